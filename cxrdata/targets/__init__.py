"""Training targets built from curated data (``"{location} {pathology}"`` prompts, region texts)."""
