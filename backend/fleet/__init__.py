"""The fleet's hosts as an operator sees them: boot state, executor heartbeat, the job each holds."""
