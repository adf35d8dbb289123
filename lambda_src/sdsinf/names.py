"""The closed sets of SDS-Inf names, in one place and without numpy: the CLI's choices, the backend's
checks and the workers all read them here."""

VARIANTS = ("queue", "object", "serial", "server")  # a config name ends with one of these
PARTITIONS = ("row", "component", "greedy")
# how blocks travel (lambda_src.sdsinf.wire): the original's, counted as it counts (SciPy's stored entries);
# compact, the same wire counting true nonzeros only; npz, skydeck's own
WIRES = ("original", "compact", "npz")
