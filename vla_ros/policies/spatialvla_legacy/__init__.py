"""spatialvla_legacy: the look-alike SpatialVLA of the bundled sim checkpoint (pending retraining on the
reference architecture)."""
