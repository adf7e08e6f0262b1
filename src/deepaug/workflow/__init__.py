"""What the Snakefile uses: config and schema, the run table, aggregation, plotting, io (no torch)."""
