"""Bootstrap intervals over test trajectories (dislomob.evaluate.stats): agreement with the train stage's
bootstrap, coverage of the median, shrinking with more trajectories, pairing."""

from __future__ import annotations

import numpy as np
import pytest

from dislomob.evaluate.stats import bootstrap_medians
from dislomob.train.evaluate import trajectory_bootstrap_median


def _errors(n_traj: int, frames: int = 8, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame errors (%) with a per-trajectory offset (frames of one trajectory are correlated)."""
    rng = np.random.default_rng(seed)
    offsets = rng.normal(0.0, 8.0, n_traj)
    values = np.concatenate([25.0 + o + rng.normal(0.0, 2.0, frames) for o in offsets])
    traj = np.repeat([f"t{i:03d}" for i in range(n_traj)], frames)
    return values, traj


def test_interval_is_the_train_stage_bootstrap_at_the_same_seed_and_level() -> None:
    values, traj = _errors(7)
    iv = bootstrap_medians({"pignn": values}, traj, n_resamples=500, seed=3, level=0.9)["pignn"]
    assert (iv.low, iv.high) == pytest.approx(trajectory_bootstrap_median(values, traj, 500, seed=3, level=0.9))
    assert iv.median == pytest.approx(float(np.median(values)))
    assert iv.n_trajectories == 7 and iv.n_values == 56 and iv.level == 0.9


def test_interval_contains_the_median_and_shrinks_with_more_trajectories() -> None:
    widths = []
    for n in (4, 16, 64):
        values, traj = _errors(n)
        iv = bootstrap_medians({"a": values}, traj, n_resamples=400, seed=0, level=0.9)["a"]
        assert iv.low <= iv.median <= iv.high
        widths.append(iv.high - iv.low)
    assert widths[0] > widths[1] > widths[2] > 0
    # roughly 1/sqrt(n): 16x more trajectories, about 4x narrower
    assert 2.0 < widths[0] / widths[2] < 8.0


def test_paired_difference_uses_the_same_resamples() -> None:
    values, traj = _errors(6)
    out = bootstrap_medians({"pignn": values, "baseline": values + 3.0}, traj, [("pignn", "baseline")], 300, 0, 0.9)
    d = out["pignn_minus_baseline"]
    # a constant shift per graph: every paired resample differs by exactly -3 (unpaired draws would spread)
    assert d.median == pytest.approx(-3.0) and d.low == pytest.approx(-3.0) and d.high == pytest.approx(-3.0)
    assert out["baseline"].high - out["baseline"].low > 1.0


def test_a_wider_level_gives_a_wider_interval_and_bad_input_is_named() -> None:
    values, traj = _errors(10)
    narrow = bootstrap_medians({"a": values}, traj, n_resamples=400, level=0.5)["a"]
    wide = bootstrap_medians({"a": values}, traj, n_resamples=400, level=0.95)["a"]
    assert wide.low <= narrow.low and narrow.high <= wide.high
    with pytest.raises(ValueError, match="level=1.5"):
        bootstrap_medians({"a": values}, traj, level=1.5)
    with pytest.raises(ValueError, match="'a' has 3 values for 80"):
        bootstrap_medians({"a": values[:3]}, traj)
