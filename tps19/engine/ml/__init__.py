"""ML signals (docs/ml.md): features, labels, purged CV, training, the model registry, the `ml`
strategy, AI decisions and their outcomes, drift. sklearn loads only where a model is fitted or used."""
