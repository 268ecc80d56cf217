"""One module per workload of issue #11; each returns Measurements for one queue."""
