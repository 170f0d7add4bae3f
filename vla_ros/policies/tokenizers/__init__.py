"""Action tokenizers (numpy only)."""
