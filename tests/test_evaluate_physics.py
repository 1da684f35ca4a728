"""Interpretability curves and physics checks (dislomob.evaluate.interpret, physics) on straight-dipole probes:
F/B * exp(-E / kT) recomposes the speed that consistency.probe_speeds measures, the fitted law's effective barrier
is Q at screw and 0 at edge, and each physics check passes on a law that obeys it and fails on one that does not."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from model_helpers import torch_one_thread  # noqa: F401

from dislomob.config import Config
from dislomob.model.phenomenological import PhenomenologicalMobility
from dislomob.evaluate.interpret import CurveGrid, curve_rows, law_components, make_probe, probe_graphs, recomposed_speed
from dislomob.evaluate.physics import edge_faster_than_screw, energy_largest_near_screw, speed_rises_with_stress
from dislomob.model.consistency import probe_speeds
from dislomob.model.pignn import EnsemblePIGNN, PIGNNHParams

CFG = Config()
CHARS = {"screw": 0.0, "edge": 90.0}


def phenomenological(edge_mobility: float, screw_mobility0: float, activation_ev: float, sign: float = 1.0):
    """The fitted law's form with edge mobility (Angstrom/ps/GPa, no T dependence), screw prefactor and barrier Q."""
    law = PhenomenologicalMobility(sign=sign)
    with torch.no_grad():
        law.log_edge_drag0.fill_(math.log(1.0 / edge_mobility))
        law.log_edge_drag1.fill_(math.log(1e-12))
        law.log_screw_mobility0.fill_(math.log(screw_mobility0))
        law.log_screw_activation.fill_(math.log(activation_ev))
    return law.eval()


def obeying() -> PhenomenologicalMobility:
    return phenomenological(10.0, 10.0, 0.1)  # screw 10 exp(-0.1 eV / kT): 0.21 at 300 K, edge 10


def tiny_ensemble() -> EnsemblePIGNN:
    from dislomob.features.invariants import graph_features

    graphs = probe_graphs([make_probe(CFG, a, 0.5, 300.0) for a in (0.0, 90.0)], CFG)
    model = EnsemblePIGNN(PIGNNHParams(members=3, width=4, depth=1, seed=2))
    feats = [graph_features(g) for g in graphs]
    model.fit_scales(torch.cat([f[0] for f in feats]), torch.cat([f[1] for f in feats]), 2.0, 0.5)
    return model.eval()


def test_f_over_b_and_e_recompose_the_probe_speed() -> None:
    probes = [make_probe(CFG, a, s, t) for a in (0.0, 90.0) for s, t in ((0.5, 300.0), (1.0, 500.0))]
    temps = np.array([p.temperature_k for p in probes])
    for law in (tiny_ensemble(), obeying()):
        c = law_components(law, probes, CFG)
        measured, _ = probe_speeds(law, probes, CFG)  # consistency's own path through predict
        assert c.speed_m_per_s == pytest.approx(measured, rel=1e-5)
        assert recomposed_speed(c, temps) == pytest.approx(measured, rel=2e-4)
        assert np.all(np.abs(measured) > 1e-3)
    c = law_components(tiny_ensemble(), probes, CFG)
    assert c.members_f_over_b.shape == (3, 4) and np.all(c.energy_ev >= 0)


def test_fitted_law_barrier_is_q_at_screw_and_zero_at_edge() -> None:
    q = 0.2
    law = phenomenological(10.0, 50.0, q)
    probes = [make_probe(CFG, a, 0.5, t) for t in (300.0, 600.0) for a in (0.0, 90.0)]
    c = law_components(law, probes, CFG)
    assert c.energy_ev[[0, 2]] == pytest.approx([q, q], rel=1e-3)
    assert np.abs(c.energy_ev[[1, 3]]).max() < 1e-6
    # F/B is the athermal speed: the edge line has no barrier, so F/B equals its speed
    assert c.f_over_b_m_per_s[[1, 3]] == pytest.approx(c.speed_m_per_s[[1, 3]], rel=1e-6)
    # screw speed = F/B exp(-Q / kT), rising with T
    assert c.speed_m_per_s[2] > c.speed_m_per_s[0] > 0


def test_physics_checks_pass_on_a_law_that_obeys_them() -> None:
    law = obeying()
    edge = edge_faster_than_screw(law, [(300.0, 0.5), (300.0, 0.5), (500.0, 0.25)], CFG)
    assert edge.passed and edge.n == 2 and edge.worst < 0.2
    rise = speed_rises_with_stress(law, {300.0: [0.25, 0.5]}, CHARS, CFG)
    assert rise.passed and rise.n == 2 and rise.worst > 0.5  # v ~ applied + dipole stress: nearly doubles
    energy = energy_largest_near_screw(law, [300.0], 0.5, [0.0, 90.0], CFG)
    assert energy.passed and energy.cases[0]["angle_of_max_deg"] == 0.0
    assert energy.worst == pytest.approx(0.1, rel=1e-3)


def test_physics_checks_fail_on_laws_built_to_violate_them() -> None:
    screw_fast = phenomenological(10.0, 1000.0, 0.01)  # screw 1000 exp(-0.01 eV / kT) = 680 > edge 10
    edge = edge_faster_than_screw(screw_fast, [(300.0, 0.5)], CFG)
    assert not edge.passed and edge.n_passed == 0 and edge.worst > 10
    backwards = phenomenological(10.0, 10.0, 0.1, sign=-1.0)  # pushes lines against the force
    rise = speed_rises_with_stress(backwards, {300.0: [0.25, 0.5]}, CHARS, CFG)
    assert not rise.passed and rise.worst < 0
    flat = phenomenological(10.0, 10.0, 1e-15)  # no barrier anywhere
    energy = energy_largest_near_screw(flat, [300.0], 0.5, [0.0, 90.0], CFG)
    assert not energy.passed and abs(energy.worst) < 1e-9
    with pytest.raises(ValueError, match="need screw-like"):
        energy_largest_near_screw(flat, [300.0], 0.5, [0.0, 10.0], CFG)


def test_curve_rows_cover_the_grid() -> None:
    grid = CurveGrid((0.0, 90.0), (0.5,), (300.0, 500.0), 300.0, 0.5)
    rows = curve_rows(obeying(), "baseline", grid, CFG)
    assert len(rows) == 2 * 3
    assert [(r["sweep"], r["stress_gpa"], r["temperature_k"]) for r in rows[::2]] == [
        ("stress", 0.5, 300.0), ("temperature", 0.5, 300.0), ("temperature", 0.5, 500.0)]
    assert rows[1]["speed_m_per_s"] > rows[0]["speed_m_per_s"] > 0
