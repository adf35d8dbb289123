"""SDS-Inf runs."""
