"""The closed sets of SDS-Inf names, in one place and without numpy: the CLI's choices, the backend's
checks and the workers all read them here."""

VARIANTS = ("queue", "object", "serial", "server")  # a config name ends with one of these
PARTITIONS = ("row", "component", "greedy")
WIRES = ("original", "npz")  # how blocks travel (lambda_src.sdsinf.wire); npz is skydeck's own, an option
