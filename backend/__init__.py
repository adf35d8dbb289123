"""skydeck's headless core: the only package that talks to AWS APIs (real or the local cloud)."""
