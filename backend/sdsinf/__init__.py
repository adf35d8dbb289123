"""SDS-Inf: Graph Challenge data, imports and runs."""
