"""Training: checkpoints, synthetic batches, the train loop (single process or torchrun DDP)."""
