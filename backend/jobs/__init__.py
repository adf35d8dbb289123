"""Plenoxels training jobs: the job service, scenes, batches, the jobs API endpoint, the monitor."""
