"""Looking at a build: previews (PNG grid, HTML page) and statistics (tables, plots)."""
