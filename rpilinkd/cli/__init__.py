"""The rpilink command."""
