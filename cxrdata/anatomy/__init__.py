"""Location vocabulary, entity -> location rules, the Gaussian LUT and the Wasserstein lookup."""
