"""The ``evaluate`` stage: single-step errors binned by character, temperature and stress, bootstrap intervals
over test trajectories, interpretability curves (F/B, E, displacement against the character angle), physics
checks and figures, for the PI-GNN ensemble and the fitted phenomenological law side by side."""
