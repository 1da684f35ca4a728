"""Ensemble selection, predictive mean/variance (Eq. 6-7), uncertainty, save/load, warm start."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dislomob.features.invariants import graph_features
from dislomob.model.ensemble import (active_members, load_ensemble, predictive, relative_uncertainty, save_ensemble, select_top,
                                     warm_start)
from dislomob.model.pignn import EnsemblePIGNN, PIGNNHParams
from model_helpers import loop_graph, torch_one_thread  # noqa: F401 (autouse fixture)


def _hp(g, members: int = 6, seed: int = 0) -> PIGNNHParams:
    return PIGNNHParams(members=members, width=5, seed=seed)


def test_select_top_half_by_validation_loss() -> None:
    g = loop_graph(10.0, 0.5, 300.0)
    model = EnsemblePIGNN(_hp(g))
    best = select_top(model, torch.tensor([0.5, 0.1, float("nan"), 0.3, 0.9, 0.2]))
    assert sorted(best.tolist()) == [1, 3, 5]
    assert model.active.tolist() == [False, True, False, True, False, True]
    with pytest.raises(ValueError, match="val_loss shape"):
        select_top(model, torch.zeros(4))


def test_predictive_mean_and_variance_match_numpy() -> None:
    rng = np.random.default_rng(0)
    dx = rng.normal(size=(6, 9, 3))
    active = np.array([True, False, True, True, False, True])
    mean, var = predictive(torch.as_tensor(dx), torch.as_tensor(active))
    assert np.allclose(mean.numpy(), dx[active].mean(0))
    assert np.allclose(var.numpy(), dx[active].var(0))  # 2/M sum over M/2 members: population variance
    u = relative_uncertainty(mean, var)
    want = np.sqrt(dx[active].var(0).sum(-1)).mean() / np.linalg.norm(dx[active].mean(0), axis=-1).mean()
    assert u == pytest.approx(float(want), rel=1e-9)
    with pytest.raises(ValueError, match="no active"):
        predictive(torch.as_tensor(dx), torch.zeros(6, dtype=torch.bool))


def test_save_load_round_trip_and_warm_start(tmp_path) -> None:
    g = loop_graph(10.0, 0.5, 300.0)
    model = EnsemblePIGNN(_hp(g, seed=1))
    model.fit_scales(*graph_features(g), speed_rms=3.0, force_rms=0.5)
    select_top(model, torch.arange(6.0))
    save_ensemble(model, tmp_path / "ens.pt", {"val_loss": [1.0]})
    loaded, extra = load_ensemble(tmp_path / "ens.pt")
    assert extra == {"val_loss": [1.0]}
    with torch.no_grad():
        assert torch.equal(loaded(g)["dx"], model(g)["dx"])
    assert loaded.active.tolist() == model.active.tolist()
    fresh = EnsemblePIGNN(_hp(g, seed=2))
    with torch.no_grad():
        assert not torch.allclose(fresh(g)["dx"], model(g)["dx"])
        warm_start(fresh, loaded)
        assert torch.equal(fresh(g)["dx"], model(g)["dx"])
    assert bool(fresh.active.all())
    with pytest.raises(ValueError, match="equal members"):
        warm_start(EnsemblePIGNN(_hp(g, members=4)), loaded)


@pytest.mark.parametrize("widths", [{}, {"width_f": 7, "width_b": 4, "width_e": 3}])
def test_active_members_model_predicts_what_the_whole_ensemble_predicts(widths) -> None:
    g = loop_graph(10.0, 0.5, 300.0)
    model = EnsemblePIGNN(PIGNNHParams(members=6, width=5, seed=3, **widths)).double()
    model.fit_scales(*graph_features(g, torch.float64), speed_rms=3.0, force_rms=0.5)
    select_top(model, torch.tensor([0.4, 0.1, 0.9, 0.3, 0.8, 0.7]))
    small = active_members(model)
    assert small.hp.members == 3 and bool(small.active.all())
    with torch.no_grad():
        dx_all, dx_small = model(g)["dx"], small(g)["dx"]
    assert torch.allclose(dx_small, dx_all[[0, 1, 3]], rtol=1e-12, atol=1e-15)
    for got, want in zip(predictive(dx_small, small.active), predictive(dx_all, model.active)):
        assert torch.allclose(got, want, rtol=1e-12, atol=1e-15)
    assert not torch.allclose(predictive(dx_all, torch.ones(6, dtype=torch.bool))[0], predictive(dx_small,
                                                                                                 small.active)[0])
