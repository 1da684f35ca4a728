"""What DDD codes use: the dislocation network type and its file format (network), the fitted baseline laws (baselines)."""
