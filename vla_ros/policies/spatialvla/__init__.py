"""spatialvla."""
