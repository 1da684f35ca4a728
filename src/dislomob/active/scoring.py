"""Candidate scores for active learning: the ensemble's relative predictive spread along a trajectory.

For one graph (one step of dt) with ensemble mean nodal displacement m_i (Angstrom) and variance v_i
(per component, Angstrom^2) over its nodes i::

    u = mean_i sqrt(sum_k v_ik) / max(mean_i |m_i|, noise_floor_angstrom)

and a candidate's score is the mean of u over its graphs (dimensionless; the paper's stop rule
compares it with ``active.threshold``). The floor keeps lines that barely move (screws at low T and
stress, whose motion per step is at the DXA noise level) from dominating (a spread divided by a
near-zero mean would be huge) and from vanishing (they still score sigma / floor, so a spread above
the noise level counts): for a line that does not move the score is bounded by mean sigma / floor.

The floor is the DXA noise of a nodal displacement per step, measured on the demo data
(data/graphs, dt = 1 ps): for the screw dipole at 500 K / 0.25 GPa, whose line-averaged step
scatters between 0.06 and 0.79 Angstrom with no steady direction (11 graphs, 110 nodes), the RMS of
the nodal displacement about its line's mean is 0.67 Angstrom (normal 0.44, glide 0.51, along b 0.04)
and the mean nodal |dx| 0.74 Angstrom; hence ``active.noise_floor_angstrom`` = 0.7 (edges there move
7-15 Angstrom per step).
"""

from __future__ import annotations

import math

import torch
from torch_geometric.data import HeteroData

from dislomob.model.predict import GraphPrediction, predict


def relative_spread(pred: GraphPrediction, noise_floor_angstrom: float) -> float:
    """One graph's mean nodal sigma over max(mean nodal |mean dx|, floor); dimensionless."""
    if not noise_floor_angstrom > 0 or not math.isfinite(noise_floor_angstrom):
        raise ValueError(f"noise_floor_angstrom={noise_floor_angstrom} not allowed: finite and > 0")
    if pred.mean.shape[0] == 0:
        raise ValueError("a graph without nodes has no uncertainty")
    sigma = pred.var.double().sum(-1).clamp_min(0).sqrt().mean()
    motion = pred.mean.double().norm(dim=-1).mean()
    return float(sigma / torch.clamp(motion, min=noise_floor_angstrom))


def candidate_score(model: torch.nn.Module, graphs: list[HeteroData], noise_floor_angstrom: float) -> float:
    """A candidate's score: :func:`relative_spread` averaged over its trajectory's graphs (dimensionless).

    Predictions come from dislomob.model.predict.predict; a model that predicts NaN gives NaN (the
    selection refuses it, naming the candidate). A candidate without graphs raises ValueError.
    """
    if not graphs:
        raise ValueError("a candidate without graphs cannot be scored (its trajectory gave no graph)")
    preds = predict(model, graphs)
    return sum(relative_spread(p, noise_floor_angstrom) for p in preds) / len(preds)
