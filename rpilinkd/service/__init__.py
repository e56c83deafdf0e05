"""The daemon: composition, systemd integration, the link driver."""
