"""Bootstrap resampling of training trajectories per ensemble member (members that saw different data
disagree where the data do not constrain them, so their spread grows outside the training conditions).

Each member m draws n trajectories with replacement from the n training trajectories; its weight for
a trajectory is how often it drew it (0, 1, 2, ...). A graph's loss counts with its trajectory's weight.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def member_weights(traj_ids: list[str], members: int, seed: int) -> dict[str, Tensor]:
    """Trajectory id -> (members,) float weights; every member draws len(traj_ids) trajectories with replacement.

    A member that would draw a single distinct trajectory redraws (it could not learn any trend).
    """
    ids = sorted(set(traj_ids))
    if not ids:
        raise ValueError("bootstrap needs at least one training trajectory")
    rng = np.random.default_rng(seed)
    counts = np.zeros((members, len(ids)))
    for m in range(members):
        while True:
            c = np.bincount(rng.integers(0, len(ids), len(ids)), minlength=len(ids))
            if len(ids) == 1 or np.count_nonzero(c) > 1:
                break
        counts[m] = c
    return {t: torch.as_tensor(counts[:, k], dtype=torch.float32) for k, t in enumerate(ids)}


def batch_weights(weights: dict[str, Tensor], traj_ids: list[str] | str) -> Tensor:
    """(members, n_graphs) weights of the graphs of a batch from their ``traj_id``."""
    ids = [traj_ids] if isinstance(traj_ids, str) else list(traj_ids)
    missing = sorted({t for t in ids if t not in weights})
    if missing:
        raise KeyError(f"no bootstrap weight for trajectories {missing}")
    return torch.stack([weights[t] for t in ids], dim=1)
