"""Point-in-time customer features: SQL definition, DuckDB and Spark runners, as-of grid, vintage and
roll rates, feature dictionary, and the ``features`` stage (``python -m pipeline.features``)."""
