"""Per-member bootstrap of training trajectories: seeded draws, and a member's loss counts only what it drew."""

from __future__ import annotations

import torch
from torch_geometric.loader import DataLoader

from dislomob.model.pignn import EnsemblePIGNN, PIGNNHParams
from dislomob.features.invariants import graph_features
from dislomob.train.bootstrap import batch_weights, member_weights
from dislomob.train.module import EnsembleModule
from model_helpers import torch_one_thread, trajectory_graphs  # noqa: F401 (autouse fixture)


def test_member_weights_are_seeded_resamples_with_replacement() -> None:
    ids = [f"t{i}" for i in range(6)]
    w = member_weights(ids, members=8, seed=3)
    counts = torch.stack([w[t] for t in ids], dim=1)  # (members, trajectories)
    assert torch.all(counts.sum(1) == 6) and torch.all((counts >= 0) & (counts == counts.round()))
    assert torch.all((counts > 0).sum(1) >= 2)  # no member sees a single trajectory
    assert len({tuple(r.tolist()) for r in counts}) > 1  # members saw different data
    assert all(torch.equal(w[t], member_weights(ids, 8, 3)[t]) for t in ids)
    assert not all(torch.equal(w[t], member_weights(ids, 8, 4)[t]) for t in ids)
    assert torch.equal(batch_weights(w, ["t1", "t0", "t1"]), torch.stack([w["t1"], w["t0"], w["t1"]], 1))


def test_a_member_gets_no_gradient_from_trajectories_it_did_not_draw() -> None:
    graphs = trajectory_graphs("a", 90.0, 0.5, 300.0, n_frames=2) + trajectory_graphs("b", 30.0, 0.4, 400.0, n_frames=2)
    model = EnsemblePIGNN(PIGNNHParams(members=3, width=6, seed=1))
    feats = [graph_features(g) for g in graphs]
    model.fit_scales(torch.cat([f[0] for f in feats]), torch.cat([f[1] for f in feats]), 2.0, 0.4)
    weights = {"a": torch.tensor([1.0, 0.0, 2.0]), "b": torch.tensor([1.0, 0.0, 0.0])}
    module = EnsembleModule(model, 1e-3, graph_weights=weights)
    batch = next(iter(DataLoader(graphs, batch_size=len(graphs))))
    module.training_step(batch, 0).backward()
    w = model.head_f.weight.grad  # (members, width, outputs)
    assert float(w[1].abs().max()) == 0.0
    assert float(w[0].abs().max()) > 0 and float(w[2].abs().max()) > 0
