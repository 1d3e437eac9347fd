"""Entity extractors behind one interface (RadGraph-XL, rule-based) and their result cache."""
