"""Phenomenological baseline: recovers a known law from analytic graphs and is scored with the same loss."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.loader import DataLoader

from dislomob.model.phenomenological import PhenomenologicalMobility, fit_baseline, node_geometry
from dislomob.model.loss import relative_error
from model_helpers import MOBILITY_EDGE, loop_graph, straight_graph, tangent_dir, torch_one_thread  # noqa: F401 (autouse fixture)


def _batch(graphs):
    return next(iter(DataLoader(graphs, batch_size=len(graphs))))


def test_node_geometry_of_a_straight_line() -> None:
    g = straight_graph(30.0, 0.4, 300.0, n=6)
    stress, xi, frame = node_geometry(g)
    assert torch.allclose(xi, torch.as_tensor(tangent_dir(30.0), dtype=torch.float32).expand(6, 3), atol=1e-5)
    assert torch.allclose(stress[0], g["gp"].stress_gpa[0])
    assert frame.shape == (6, 3, 3)


@pytest.mark.slow
def test_fit_recovers_the_test_law() -> None:
    train = [straight_graph(a, s, t, n=5) for a in (0.0, 45.0, 90.0, 135.0) for s in (0.3, 0.6) for t in (300.0, 600.0)]
    law, fit = fit_baseline(_batch(train), steps=400)
    assert fit.sign == 1.0
    m_edge_300 = 1.0 / (fit.edge_drag0 + fit.edge_drag1)
    assert m_edge_300 == pytest.approx(MOBILITY_EDGE, rel=0.1)
    held_out = [straight_graph(70.0, 0.5, 450.0, n=7), loop_graph(12.0, 0.5, 300.0, n=12)]
    with torch.no_grad():
        err = relative_error(_batch(held_out), law.displacement(_batch(held_out)))
    assert float(err.max()) < 0.15
    wrong = PhenomenologicalMobility(sign=-1.0)
    wrong.load_state_dict({**law.state_dict(), "sign": torch.tensor(-1.0)})
    with torch.no_grad():
        assert float(relative_error(_batch(held_out), wrong.displacement(_batch(held_out))).min()) > 1.5


def test_baseline_needs_gp_stress() -> None:
    g = straight_graph(30.0, 0.4, 300.0, n=6)
    del g["gp"].stress_gpa
    with pytest.raises(ValueError, match="stress_gpa"):
        PhenomenologicalMobility().displacement(g)
