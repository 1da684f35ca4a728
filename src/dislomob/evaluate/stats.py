"""Bootstrap intervals of median errors over test trajectories (whole trajectories are resampled, never the
overlapping frames of one), for each law and for the paired difference of two laws on the same resamples.

The resampling draws are those of :func:`dislomob.train.evaluate.trajectory_bootstrap_median` (same seed, same
sequence), so a single law's interval here equals that function's at the same level.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Interval:
    """Median of all values and the percentile interval (``level``) of the resampled medians."""

    median: float
    low: float
    high: float
    level: float
    n_trajectories: int
    n_values: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def resamples(n_trajectories: int, n_resamples: int, seed: int) -> np.ndarray:
    """Trajectory indices (n_resamples, n_trajectories) drawn with replacement, seeded."""
    if n_trajectories < 1 or n_resamples < 1:
        raise ValueError(f"bootstrap needs >= 1 trajectory and resample: got {n_trajectories}, {n_resamples}")
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(0, n_trajectories, n_trajectories) for _ in range(n_resamples)])


def _interval(point: float, meds: np.ndarray, level: float, n_traj: int, n_values: int) -> Interval:
    lo, hi = np.quantile(meds, [(1 - level) / 2, 1 - (1 - level) / 2])
    return Interval(float(point), float(lo), float(hi), level, n_traj, n_values)


def bootstrap_medians(series: dict[str, np.ndarray], traj: np.ndarray, pairs: list[tuple[str, str]] = (),
                      n_resamples: int = 2000, seed: int = 0, level: float = 0.9) -> dict[str, Interval]:
    """Interval of the median of each of ``series`` (values per graph, aligned with ``traj``) and, for each
    (a, b) in ``pairs``, of median(a) - median(b) computed on the same resampled trajectories (``a_minus_b``)."""
    if not 0 < level < 1:
        raise ValueError(f"interval level={level}: allowed 0 < level < 1")
    traj = np.asarray(traj)
    for name, v in series.items():
        if len(v) != len(traj):
            raise ValueError(f"series {name!r} has {len(v)} values for {len(traj)} trajectory labels")
    ids = sorted(set(traj.tolist()))
    draws = resamples(len(ids), n_resamples, seed)
    groups = {name: [np.asarray(v, dtype=np.float64)[traj == t] for t in ids] for name, v in series.items()}
    meds = {name: np.array([np.median(np.concatenate([g[i] for i in d])) for d in draws]) for name, g in groups.items()}
    out = {name: _interval(float(np.median(v)), meds[name], level, len(ids), len(v)) for name, v in series.items()}
    for a, b in pairs:
        point = float(np.median(series[a]) - np.median(series[b]))
        out[f"{a}_minus_{b}"] = _interval(point, meds[a] - meds[b], level, len(ids), len(traj))
    return out
