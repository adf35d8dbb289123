"""Jobs: the list, one job, the composer and batch submit."""
