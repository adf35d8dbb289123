"""Watching the system run: the monitor and the logs."""
