"""spatial_model."""
