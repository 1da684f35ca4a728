"""The PI-GNN obeys the symmetries of a dislocation in a BCC crystal by construction, for any weights.

Checked on untrained ensembles (random weights, float64) so that nothing learned can hide a fault:
- (xi, b) -> (-xi, -b) describes the same dislocation: the same displacements;
- a reversed pure resolved shear reverses the motion; zero stress gives zero motion;
- the 2-fold axis along the glide-plane normal (sigma_bn, sigma_ns -> -sigma_bn, -sigma_ns for any
  stress) reverses the glide and keeps the out-of-plane motion; the lattice inversion (xi -> -xi, b kept)
  reverses the motion;
- a straight line's speed does not depend on its node spacing.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dislomob import graph_schema as S
from dislomob.config import Config
from dislomob.features.invariants import graph_features
from dislomob.model.consistency import Probe, consistency_checks, probe_burgers_direction, probe_graph, probe_speeds
from dislomob.model.pignn import EnsemblePIGNN, PIGNNHParams
from model_helpers import FRAME, loop_graph, straight_graph, torch_one_thread  # noqa: F401 (autouse fixture)

TOL = 1e-9


def _model(graphs, seed: int = 0, glide_only: bool = False) -> EnsemblePIGNN:
    model = EnsemblePIGNN(PIGNNHParams(members=4, width=8, seed=seed, energy_scale_ev=0.05, glide_only=glide_only))
    feats = [graph_features(g) for g in graphs]
    model.fit_scales(torch.cat([f[0] for f in feats]), torch.cat([f[1] for f in feats]), speed_rms=2.0, force_rms=0.4)
    return model.double()


def _dx(model, g) -> torch.Tensor:
    with torch.no_grad():
        return model(g)["dx"]


def _general_stress(seed: int) -> np.ndarray:
    a = np.random.default_rng(seed).normal(scale=0.4, size=(3, 3))
    return a + a.T


def _with_stress(g, stress: np.ndarray):
    h = g.clone()
    h[S.GP].stress_gpa = torch.as_tensor(np.repeat(stress[None], h[S.GP].stress_gpa.shape[0], axis=0), dtype=torch.float32)
    return h


def _reversed_line(g, negate_burgers: bool):
    """The same nodes listed backwards (line sense reversed); with ``negate_burgers`` also b -> -b."""
    h = g.clone()
    n = h[S.NODE].pos.shape[0]
    order = torch.arange(n - 1, -1, -1)
    h[S.NODE].pos = g[S.NODE].pos[order]
    frame = g[S.NODE].frame[order].clone()
    if negate_burgers:
        frame[:, 0] *= -1
        frame[:, 2] *= -1
    h[S.NODE].frame = frame
    # segment j of the reversed line joins new nodes j -> j+1 = old nodes n-1-j -> n-2-j: old segment n-2-j backwards
    old_seg = (n - 2 - torch.arange(n)) % n
    h[S.NODE_SEG].shift = -g[S.NODE_SEG].shift[old_seg]
    gp_per_seg = g[S.GP].pos.shape[0] // n
    gp_order = (old_seg[:, None] * gp_per_seg + torch.arange(gp_per_seg - 1, -1, -1)[None]).reshape(-1)
    h[S.GP].pos = g[S.GP].pos[gp_order]
    h[S.GP].stress_gpa = g[S.GP].stress_gpa[gp_order]
    return h


@pytest.mark.parametrize("angle", [0.0, 35.0, 90.0, 150.0])
def test_same_dislocation_described_backwards_moves_the_same(angle: float) -> None:
    g = straight_graph(angle, 0.4, 350.0, n=7, wiggle=2.0)
    g = _with_stress(g, _general_stress(1))
    g[S.NODE].pos = g[S.NODE].pos + torch.sin(torch.arange(7.0))[:, None] * torch.as_tensor(FRAME[1], dtype=torch.float32)  # partly cross-slipped
    model = _model([g])
    a, b = _dx(model, g), _dx(model, _reversed_line(g, negate_burgers=True))
    scale = float(a.abs().max())
    assert scale > 1e-3
    assert torch.allclose(b.flip(1), a, atol=TOL * scale, rtol=0)
    # the inversion keeps b and reverses the line: the motion reverses
    c = _dx(model, _reversed_line(g, negate_burgers=False))
    assert torch.allclose(c.flip(1), -a, atol=TOL * scale, rtol=0)


@pytest.mark.parametrize("glide_only", [True, False])
def test_reversed_resolved_shear_reverses_motion_and_zero_stress_gives_none(glide_only: bool) -> None:
    graphs = [straight_graph(35.0, 0.5, 300.0, n=7, wiggle=2.0), loop_graph(12.0, 0.5, 600.0, n=10)]
    model = _model(graphs, seed=3, glide_only=glide_only)
    for g in graphs:
        a = _dx(model, g)
        minus = g.clone()
        minus[S.GP].stress_gpa = -g[S.GP].stress_gpa
        assert float(a.abs().max()) > 1e-3
        assert torch.equal(_dx(model, minus), -a)
        zero = g.clone()
        zero[S.GP].stress_gpa = torch.zeros_like(g[S.GP].stress_gpa)
        assert float(_dx(model, zero).abs().max()) == 0.0


def test_twofold_axis_along_the_plane_normal_reverses_glide_only() -> None:
    g = _with_stress(straight_graph(60.0, 0.4, 400.0, n=6, wiggle=1.5), _general_stress(7))
    model = _model([g], seed=5)
    loc = FRAME @ g[S.GP].stress_gpa[0].double().numpy() @ FRAME.T
    turned = loc.copy()
    turned[0, 1] *= -1
    turned[1, 0] *= -1
    turned[1, 2] *= -1
    turned[2, 1] *= -1
    h = _with_stress(g, FRAME.T @ turned @ FRAME)
    a, b = _dx(model, g), _dx(model, h)
    n_hat = torch.as_tensor(FRAME[1])
    a_n, b_n = (a * n_hat).sum(-1, keepdim=True) * n_hat, (b * n_hat).sum(-1, keepdim=True) * n_hat
    scale = float(a.abs().max())
    assert float((a - a_n).abs().max()) > 1e-3 and float(a_n.abs().max()) > 1e-4  # glide and cross-slip both present
    assert torch.allclose(b - b_n, -(a - a_n), atol=1e-6 * scale)
    assert torch.allclose(b_n, a_n, atol=1e-6 * scale)


def test_straight_line_speed_does_not_depend_on_node_spacing() -> None:
    cfg = Config()
    probes = [Probe(a, 0.5, 300.0, f * 0.6, 12.0) for a in (0.0, 35.26, 90.0) for f in (0.5, 1.0, 2.5, 5.0)]
    graphs = [probe_graph(p, cfg) for p in probes]
    model = _model(graphs[:4], seed=2).float()
    v, _ = probe_speeds(model, probes, cfg)
    v = v.reshape(3, 4)
    assert np.all(np.abs(v) > 1.0)
    assert np.allclose(v, v[:, 1:2], rtol=1e-4)


@pytest.mark.parametrize("angle", [0.0, 45.0, 90.0])
def test_probe_burgers_vector_is_turned_like_the_md_cells(angle: float) -> None:
    from dislomob.md.crystal import BURGERS, nearest_orientation

    o = nearest_orientation(angle)
    b_md = o.rotation() @ BURGERS
    b_md /= np.linalg.norm(b_md)
    b = probe_burgers_direction(o.angle_deg)
    assert abs(abs(float(b @ b_md)) - 1.0) < 1e-9  # parallel or antiparallel (the dipole has both)
    assert np.allclose(o.rotation() @ np.array([1.0, 0.0, 1.0]) / np.sqrt(2), [0.0, 0.0, 1.0])


def test_consistency_checks_pass_by_construction_on_an_untrained_law() -> None:
    cfg = Config()
    model = _model([probe_graph(Probe(90.0, 0.5, 300.0, 0.6, 3.0), cfg)], seed=4).float()
    m = consistency_checks(model, cfg)["metrics"]
    assert m["consistency_reversal_pass_fraction"] == 1.0 and m["consistency_reversal_worst"] < 0.05
    assert m["consistency_zero_stress_pass_fraction"] == 1.0
    assert m["consistency_spacing_pass_fraction"] == 1.0 and m["consistency_spacing_worst"] < 1e-3
    assert m["consistency_line_sense_worst"] < 1e-5
    assert m["consistency_spread_ratio"] is not None and m["consistency_spread_in_grid"] > 0
