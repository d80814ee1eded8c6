"""Training: data pipeline, recipes and the training loop."""
