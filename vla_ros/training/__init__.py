"""Training: synthetic batches, the train loop (single process or torchrun DDP), ESM pretraining.
Checkpoint I/O lives in vla_ros/policies/checkpoint_io.py (inference loads checkpoints without this package)."""
