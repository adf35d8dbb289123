"""skydeck's headless core: the only package that talks to AWS APIs (real or the local cloud)."""

__version__ = "0.1.0"  # the one place the version is written: pyproject.toml reads it from here
