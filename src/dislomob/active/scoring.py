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

Calibration (``active.calibrate_spread``): re-seeded members agree more than they are right (demo grid:
relative spread 0.10 against a median relative error of 0.33), so the paper's stop rule would stop at
once. Each iteration the raw scores are multiplied by ``c = median_g e_g / median_g u_g`` over the
graphs g of the validation trajectories only, with e_g the graph's line distance between prediction
and MD over max(line distance of no motion, floor) -- the error measured like the spread, floor
included. A single factor keeps the ranking (and so the Spearman correlation of spread and error);
it makes the stop rule compare an error-sized uncertainty with the threshold.
"""

from __future__ import annotations

import math

import numpy as np
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


def floored_relative_error(batch, dx: torch.Tensor, noise_floor_angstrom: float) -> torch.Tensor:
    """Per graph: line distance between predicted and MD positions over max(line distance of no motion,
    floor) (dimensionless, (n_graphs,)); ``dx`` nodal displacements in Angstrom."""
    from dislomob.model.loss import displacement_loss

    still = displacement_loss(batch, torch.zeros_like(batch["node"].pos, dtype=dx.dtype))
    return displacement_loss(batch, dx) / still.clamp_min(noise_floor_angstrom)


def spread_calibration(errors: list[float], spreads: list[float]) -> float:
    """Factor c = median(errors) / median(spreads) that makes a typical calibrated spread a typical error
    (both dimensionless, per validation graph); raises ValueError naming the values it cannot use."""
    e, u = np.asarray(errors, dtype=np.float64), np.asarray(spreads, dtype=np.float64)
    if e.size == 0 or e.size != u.size:
        raise ValueError(f"spread calibration needs equally many errors and spreads (> 0), got {e.size} and {u.size}")
    if not (np.isfinite(e).all() and np.isfinite(u).all()):
        raise ValueError(f"spread calibration got non-finite values: errors {errors}, spreads {spreads}")
    med_u = float(np.median(u))
    if med_u <= 0:
        raise ValueError(f"spread calibration: median validation spread {med_u} is not > 0 (members identical?)")
    return float(np.median(e)) / med_u


def trajectory_stats(model, graphs: list, floor: float) -> dict[str, list[float]]:
    """Per graph of one trajectory: ``error`` (single-step relative error, the headline measure),
    ``error_floored`` (the same with the noise floor under its denominator, like the spread) and
    ``spread`` (raw relative spread, :func:`relative_spread`); all dimensionless. A candidate's score is the
    mean of its ``spread``; predictions come from dislomob.model.predict.predict (a NaN prediction gives NaN,
    which the selection refuses, naming the candidate); a trajectory without graphs raises ValueError."""
    from torch_geometric.loader import DataLoader

    from dislomob.model.loss import relative_error

    if not graphs:
        raise ValueError("a candidate without graphs cannot be scored (its trajectory gave no graph)")
    preds = predict(model, graphs)
    batch = next(iter(DataLoader(graphs, batch_size=len(graphs))))
    dx = torch.cat([p.mean for p in preds]).to(batch["node"].pos.dtype)
    return {"error": relative_error(batch, dx).tolist(),
            "error_floored": floored_relative_error(batch, dx, floor).tolist(),
            "spread": [relative_spread(p, floor) for p in preds]}
