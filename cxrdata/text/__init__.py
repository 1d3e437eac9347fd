"""Report text: sections, sentences, pathology mentions and negation."""
