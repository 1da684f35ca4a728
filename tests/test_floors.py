"""The floors beside every headline error (dislomob.model.floors), on graphs of real demo-size MD (datasets/replicas):
the mean-law floor of a steadily gliding edge dipole is small, a law that knows only another replica's mean
speed does no better, and a wrong mean speed does worse."""

from __future__ import annotations

import numpy as np
import pytest

from dislomob.config import load_config
from dislomob.features.featurize import featurize_trajectory
from dislomob.features.graphs import to_heterodata
from dislomob.md.trajectory import read_trajectory
from dislomob.model.floors import line_labels, mean_law_errors, rigid_line_errors, trajectory_line_means

EDGE_SEEDS = {"8ab61b46f13e65c4": "own seed", "c455cb1c61dcab97": "seed 11"}  # 171 K, 0.985 GPa edge replicas


@pytest.fixture(scope="module")
def graphs():
    cfg = load_config("pipelines/al_benchmark/params.yaml")
    out = {}
    for key in EDGE_SEEDS:
        res = featurize_trajectory(read_trajectory(f"datasets/replicas/md/{key}.h5"), cfg, key)
        out[key] = [to_heterodata(r) for r in res.records]
    return out


def test_lines_are_the_node_cycles(graphs):
    g = graphs["8ab61b46f13e65c4"][0]
    labels = line_labels(g)
    assert sorted(set(labels.tolist())) == [0, 1]
    assert min(np.bincount(labels)) >= 4


def test_mean_law_floor_is_small_for_steady_edge_glide_and_beaten_by_no_other_rigid_speed(graphs):
    gs = graphs["8ab61b46f13e65c4"]
    floor = mean_law_errors(gs)
    means = trajectory_line_means(gs)
    (key, lines), = means.items()
    speeds = [float(np.linalg.norm(m)) for _, m in lines]
    off = {key: [(h, 1.2 * m) for h, m in lines]}
    wrong = rigid_line_errors(gs, off)
    print(f"mean displacement per dt {np.round(speeds, 2)} A; floor median {np.median(floor):.4f}, "
          f"with 1.2 x the mean speed {np.median(wrong):.4f}")
    assert np.all(np.isfinite(floor)) and np.median(floor) < 0.05
    assert np.median(wrong) > 2 * np.median(floor)


def test_replica_floor_is_no_lower_than_the_mean_law_floor(graphs):
    a, b = graphs
    own = mean_law_errors(graphs[a])
    other = rigid_line_errors(graphs[a], {a: trajectory_line_means(graphs[b])[b]})
    print(f"floor {np.median(own):.4f}, replica floor (seed 11's mean speed) {np.median(other):.4f}")
    assert np.all(np.isfinite(other))
    assert np.median(other) >= np.median(own) - 1e-9


def test_unmatched_line_gives_nan(graphs):
    gs = graphs["8ab61b46f13e65c4"][:2]
    far = {"8ab61b46f13e65c4": [(h + 20.0, m) for h, m in trajectory_line_means(gs)["8ab61b46f13e65c4"]]}
    assert np.all(np.isnan(rigid_line_errors(gs, far)))
