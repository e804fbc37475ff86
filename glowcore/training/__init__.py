"""Training a model: the Trainer, its config, checkpoints and resume state, DDP, weight averaging."""
