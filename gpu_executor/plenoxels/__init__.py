"""Plenoxels: datasets, the synthetic scene maker, and skydeck's own PyTorch training engine.

`scene` and `dataset` need only numpy and Pillow (the CLI uses them on any machine); the engine
modules (`grid`, `render`, `train`, ...) need torch and are imported only where training happens.
"""
