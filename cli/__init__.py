"""`skydeck`, the command line: one module per command group, assembled in `cli.main`."""
