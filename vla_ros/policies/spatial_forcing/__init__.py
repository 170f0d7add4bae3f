"""spatial_forcing."""
