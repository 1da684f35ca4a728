"""Single-step errors per graph and their bins (dislomob.evaluate.single_step, bins) on analytic graphs of the
test law of model_helpers: a straight line moved one step by a known mobility."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from model_helpers import MOBILITY_EDGE, MOBILITY_SCREW, torch_one_thread, trajectory_graphs  # noqa: F401
from torch_geometric.loader import DataLoader

from dislomob.model.phenomenological import PhenomenologicalMobility
from dislomob.evaluate.bins import bin_errors, bin_index
from dislomob.evaluate.single_step import Evaluation, single_step_errors
from dislomob.model.loss import displacement_loss
from dislomob.model.pignn import EnsemblePIGNN, PIGNNHParams

RUNS = [("a", 0.0, 0.5, 300.0), ("b", 35.3, 0.25, 300.0), ("c", 90.0, 0.5, 300.0), ("d", 90.0, 0.8, 300.0),
        ("e", 160.0, 0.5, 300.0)]


def _graphs():
    return [g for tid, a, tau, t in RUNS for g in trajectory_graphs(tid, a, tau, t, n_frames=3)]


def exact_law() -> PhenomenologicalMobility:
    """The fitted law's form holding the test law's parameters at 300 K: m = 1.5 cos^2 + 8 sin^2 Angstrom/ps/GPa."""
    law = PhenomenologicalMobility(sign=1.0)
    with torch.no_grad():
        law.log_edge_drag0.fill_(math.log(1.0 / MOBILITY_EDGE))
        law.log_edge_drag1.fill_(math.log(1e-12))
        law.log_screw_mobility0.fill_(math.log(MOBILITY_SCREW))
        law.log_screw_activation.fill_(math.log(1e-12))
    return law.eval()


def tiny_ensemble(graphs) -> EnsemblePIGNN:
    from dislomob.features.invariants import graph_features

    model = EnsemblePIGNN(PIGNNHParams(members=3, width=4, depth=1, seed=5))
    feats = [graph_features(g) for g in graphs]
    model.fit_scales(torch.cat([f[0] for f in feats]), torch.cat([f[1] for f in feats]), 1.0, 0.5)
    return model.eval()


def test_percentage_is_absolute_over_the_no_motion_reference_and_the_exact_law_is_near_zero() -> None:
    graphs = _graphs()
    err = single_step_errors(Evaluation("dipole", tiny_ensemble(graphs), exact_law(), graphs), batch_size=4)
    assert err.n_graphs == len(graphs) == 15 and err.trajectories == ["a", "b", "c", "d", "e"]
    # the reference computed graph by graph, independently of the batched pass
    ref = np.array([float(displacement_loss(next(iter(DataLoader([g], batch_size=1))),
                                            torch.zeros_like(g["node"].pos, dtype=torch.float64))[0]) for g in graphs])
    assert err.reference_angstrom == pytest.approx(ref, rel=1e-6)
    for law in ("pignn", "baseline"):
        assert err.percent[law] == pytest.approx(100.0 * err.absolute_angstrom[law] / ref, rel=1e-5)
    # the fitted law with the test law's own mobilities reproduces the motion; the untrained ensemble does not
    assert np.median(err.percent["baseline"]) < 1.0
    assert np.median(err.percent["pignn"]) > 20.0
    assert err.angle_deg.tolist() == pytest.approx([a for _, a, _, _ in RUNS for _ in range(3)], abs=1e-4)
    assert err.stress_gpa.tolist() == pytest.approx([s for _, _, s, _ in RUNS for _ in range(3)], abs=1e-6)


def test_bins_count_every_graph_once_with_open_outer_bins() -> None:
    graphs = _graphs()
    err = single_step_errors(Evaluation("dipole", tiny_ensemble(graphs), exact_law(), graphs))
    rows = bin_errors(err, "angle", [15.0, 45.0, 75.0, 105.0, 150.0])  # 0 deg below, 160 deg above the edges
    assert sum(r["n_graphs"] for r in rows) == err.n_graphs
    assert [r["n_graphs"] for r in rows] == [3 + 3, 0, 6, 3]
    assert [r["n_trajectories"] for r in rows] == [2, 0, 2, 1]
    edge = rows[2]
    sel = np.isclose(err.angle_deg, 90.0)
    assert edge["pignn_error_pct_median"] == pytest.approx(float(np.median(err.percent["pignn"][sel])))
    assert edge["baseline_error_angstrom_median"] == pytest.approx(float(np.median(err.absolute_angstrom["baseline"][sel])))
    assert rows[1]["pignn_error_pct_median"] is None
    stress = bin_errors(err, "stress", [0.0, 0.4, 0.6, 1.0])
    assert [r["n_graphs"] for r in stress] == [3, 9, 3]
    assert sum(r["n_graphs"] for r in bin_errors(err, "temperature", [0.0, 1000.0])) == err.n_graphs
    assert bin_index(np.array([-5.0, 0.0, 0.99, 1.0, 7.0]), np.array([0.0, 1.0, 2.0])).tolist() == [0, 0, 0, 1, 1]


def test_bad_bins_are_named() -> None:
    graphs = _graphs()[:3]
    err = single_step_errors(Evaluation("dipole", tiny_ensemble(graphs), exact_law(), graphs))
    with pytest.raises(ValueError, match="angle bin edges=\\[10.0, 5.0\\]"):
        bin_errors(err, "angle", [10.0, 5.0])
    with pytest.raises(ValueError, match="bin by 'colour'"):
        bin_errors(err, "colour", [0.0, 1.0])
    with pytest.raises(ValueError, match="evaluation 'empty' has no graphs"):
        single_step_errors(Evaluation("empty", tiny_ensemble(graphs), exact_law(), []))
