"""Hyperparameter tuning (issue 12): an Optuna study over the F-, B- and E-net widths, depth and learning rate."""
