"""cxrdata: credentialed chest X-ray downloads -> typed, sharded Parquet for grounding research."""

__version__ = "0.1.0"
