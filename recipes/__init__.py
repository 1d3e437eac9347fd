"""Named builds and training runs, as YAML (see README.md here)."""
