"""Candidate scores: relative ensemble spread along a trajectory, with the DXA noise floor."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from model_helpers import straight_graph, torch_one_thread, trajectory_graphs  # noqa: F401 (autouse fixture)

from dislomob import graph_schema as S
from dislomob.active.scoring import relative_spread, trajectory_stats
from dislomob.model.predict import GraphPrediction

FLOOR = 0.7


class Members(torch.nn.Module):
    """An ensemble stand-in: member k moves every node by ``motion`` along x plus ``offsets[k]`` along y (Angstrom)."""

    def __init__(self, motion: float, offsets: list[float]):
        super().__init__()
        self.motion, self.offsets = motion, torch.tensor(offsets, dtype=torch.float32)

    def forward(self, batch) -> dict:
        n = batch[S.NODE].pos.shape[0]
        dx = torch.zeros(len(self.offsets), n, 3)
        dx[..., 0] = self.motion
        dx[..., 1] = self.offsets[:, None]
        return {"dx": dx}


def candidate_score(model, graphs, floor: float) -> float:
    """A candidate's score as the AL loop takes it: the mean relative spread over its trajectory's graphs."""
    return float(np.mean(trajectory_stats(model, graphs, floor)["spread"]))


def _sigma(offsets: list[float]) -> float:
    return float(np.std(offsets))  # population std, as predict's variance


def test_line_that_does_not_move_scores_sigma_over_the_floor():
    graphs = trajectory_graphs("screw", 0.0, 0.0, 300.0, n_frames=3)
    offsets = [-0.2, 0.0, 0.2, 0.1]
    score = candidate_score(Members(0.0, offsets), graphs, FLOOR)
    assert math.isfinite(score) and score == pytest.approx(_sigma(offsets) / FLOOR, rel=1e-5)
    assert candidate_score(Members(0.0, [0.0, 0.0]), graphs, FLOOR) == 0.0


def test_moving_line_is_scored_relative_to_its_motion():
    graphs = trajectory_graphs("edge", 90.0, 0.5, 300.0, n_frames=2)
    offsets = [-0.5, 0.5]
    assert candidate_score(Members(10.0, offsets), graphs, FLOOR) == pytest.approx(0.5 / 10.0, rel=1e-5)
    # below the floor the motion no longer shrinks the denominator: bounded by sigma / floor
    assert candidate_score(Members(0.01, offsets), graphs, FLOOR) == pytest.approx(0.5 / FLOOR, rel=1e-5)


def test_members_that_disagree_more_score_higher():
    graphs = [straight_graph(45.0, 0.5, 500.0, traj_id="c", frame_index=k) for k in range(2)]
    low = candidate_score(Members(3.0, [-0.1, 0.1, 0.0]), graphs, FLOOR)
    high = candidate_score(Members(3.0, [-1.0, 1.0, 0.0]), graphs, FLOOR)
    assert 0 < low < high and high == pytest.approx(10 * low, rel=1e-5)


def test_score_averages_the_steps_of_the_trajectory():
    n = 4
    still = GraphPrediction(torch.zeros(n, 3), torch.full((n, 3), 0.03), torch.zeros(2, n, 3))
    moving = GraphPrediction(torch.full((n, 3), 2.0), torch.full((n, 3), 0.03), torch.zeros(2, n, 3))
    sigma = math.sqrt(3 * 0.03)
    assert relative_spread(still, FLOOR) == pytest.approx(sigma / FLOOR, rel=1e-6)
    assert relative_spread(moving, FLOOR) == pytest.approx(sigma / (2.0 * math.sqrt(3)), rel=1e-6)


def test_nan_prediction_gives_nan_and_bad_inputs_are_refused():
    graphs = trajectory_graphs("t", 0.0, 0.5, 300.0, n_frames=1)
    assert math.isnan(candidate_score(Members(float("nan"), [0.0, 1.0]), graphs, FLOOR))
    with pytest.raises(ValueError, match="without graphs"):
        candidate_score(Members(0.0, [0.0, 1.0]), [], FLOOR)
    with pytest.raises(ValueError, match="noise_floor_angstrom=0.0"):
        candidate_score(Members(0.0, [0.0, 1.0]), graphs, 0.0)


def test_real_ensemble_scores_through_the_project_predict():
    from dislomob.model.pignn import EnsemblePIGNN, PIGNNHParams

    graphs = trajectory_graphs("mixed", 45.0, 0.5, 500.0, n_frames=2)
    model = EnsemblePIGNN(PIGNNHParams(members=4, width=5, seed=0)).eval()
    score = candidate_score(model, graphs, FLOOR)
    assert math.isfinite(score) and score > 0
    assert score == candidate_score(model, graphs, FLOOR)  # deterministic


def test_floored_error_is_zero_for_the_truth_one_for_no_motion_and_bounded_by_the_floor():
    from torch_geometric.loader import DataLoader

    from dislomob.active.scoring import floored_relative_error
    from dislomob.model.loss import displacement_loss

    graphs = trajectory_graphs("edge", 90.0, 0.5, 300.0, n_frames=2)
    batch = next(iter(DataLoader(graphs, batch_size=len(graphs))))
    pos = batch[S.NODE].pos
    still = displacement_loss(batch, torch.zeros_like(pos))
    assert (still > FLOOR).all()  # these lines move more than the noise floor per step
    assert torch.allclose(floored_relative_error(batch, torch.zeros_like(pos), FLOOR), torch.ones(2, dtype=pos.dtype))
    # a prediction one Angstrom off along z everywhere: its distance over max(still, floor)
    off = torch.zeros_like(pos)
    off[:, 2] = 1.0
    expect = displacement_loss(batch, off) / still
    assert torch.allclose(floored_relative_error(batch, off, FLOOR), expect)
    # a floor above the motion caps the denominator: the same error reads smaller
    big = float(still.max()) * 4
    assert (floored_relative_error(batch, off, big) < expect).all()


def test_spread_calibration_is_the_ratio_of_typical_error_to_typical_spread():
    from dislomob.active.scoring import spread_calibration

    assert spread_calibration([0.2, 0.4, 0.6], [0.1, 0.1, 0.2]) == pytest.approx(4.0)
    assert spread_calibration([0.3, 0.3], [0.05, 0.15]) == pytest.approx(3.0)  # median of an even count: the mean pair
    with pytest.raises(ValueError, match="not > 0"):
        spread_calibration([0.3], [0.0])
    with pytest.raises(ValueError, match="non-finite"):
        spread_calibration([float("nan")], [0.1])
    with pytest.raises(ValueError, match="equally many"):
        spread_calibration([0.1, 0.2], [0.1])
