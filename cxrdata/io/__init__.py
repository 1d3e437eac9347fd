"""Shard writer, rejects, dataset card, and the schema <-> Hugging Face features bridge."""
