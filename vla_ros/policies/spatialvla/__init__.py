"""spatialvla: SpatialVLA as released (reference architecture at every width)."""
