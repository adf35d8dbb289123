"""The SDS-Inf variants skydeck runs (a module of its own: the CLI lists them without loading numpy)."""

VARIANTS = ("queue", "object", "serial", "server")
