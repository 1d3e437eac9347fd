"""The output contract: one versioned schema (Hugging Face features + column docs) per table."""
