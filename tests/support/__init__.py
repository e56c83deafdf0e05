"""Helpers shared by the tests: free ports, child processes stopped by PID."""
