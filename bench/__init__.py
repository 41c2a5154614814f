"""fnbox benchmarks: each scenario runs with its baseline in the same run (``make bench``)."""
