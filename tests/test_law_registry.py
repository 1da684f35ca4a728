"""The mobility-law seam (dislomob.model.laws): a law added in one module plus one registry entry runs through
training, saving and loading, ``predict`` and ``MobilityLaw`` with no other change."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pytest
import torch
from model_helpers import MOBILITY_EDGE, shear_stress, torch_one_thread, trajectory_graphs  # noqa: F401
from test_ddd_law import dipole
from torch import Tensor, nn

from dislomob.config import Config, ConfigError, parse_config
from dislomob.ddd.law import MobilityLaw
from dislomob.model.ensemble import load_ensemble, save_ensemble
from dislomob.model.laws import LawSpec, build_law, law_name, law_names, law_spec, register_law
from dislomob.model.line_geometry import motion_axes, node_tangent
from dislomob.model.pignn import _node_dt, peach_koehler
from dislomob.model.predict import predict


@dataclass(frozen=True)
class DragHParams:
    """Members and seed of the test law."""

    members: int = 2
    seed: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


class LinearDragLaw(nn.Module):
    """A law of one learned glide mobility per member: dx = dt * m * (glide part of the Peach-Koehler force)."""

    LAW_NAME = "test_linear_drag"

    def __init__(self, hp: DragHParams):
        super().__init__()
        self.hp = hp
        gen = torch.Generator().manual_seed(hp.seed)
        self.log_mobility = nn.Parameter(torch.randn(hp.members, generator=gen) * 0.1)
        self.register_buffer("active", torch.ones(hp.members, dtype=torch.bool))

    def forward(self, batch) -> dict[str, Tensor]:
        dtype = self.log_mobility.dtype
        pk = peach_koehler(batch, dtype)
        glide_axis = motion_axes(node_tangent(batch, dtype), batch["node"].frame.to(dtype))[:, 0]
        glide = (pk * glide_axis).sum(-1, keepdim=True) * glide_axis  # (n, 3) GPa
        dt = _node_dt(batch, pk.shape[0]).to(dtype)[:, None]
        return {"dx": self.log_mobility.exp()[:, None, None] * (dt * glide)[None]}


SPEC = register_law(LawSpec(LinearDragLaw.LAW_NAME, LinearDragLaw, DragHParams,
                            from_config=lambda tc, seed: DragHParams(members=tc.members, seed=seed)))


def test_the_project_laws_are_registered_and_an_unknown_name_is_refused_by_name():
    assert {"pignn", "phenomenological", "test_linear_drag"} <= set(law_names())
    with pytest.raises(ValueError, match=r"law 'gpr' is not registered: allowed .*pignn"):
        law_spec("gpr")
    with pytest.raises(ConfigError, match="train.law"):
        parse_config({**Config().model_dump(), "train": {**Config().model_dump()["train"], "law": "No Such"}})


def test_a_new_law_trains_saves_loads_predicts_and_drives_mobility_law(tmp_path):
    """Graphs of edge-like straight lines moved by the tests' law (glide mobility MOBILITY_EDGE at 300 K): the
    registered test law trains to that mobility, keeps its name through its file and gives MobilityLaw velocities
    along the glide force, proportional to the stress."""
    from dislomob.train.stage import train_ensemble

    graphs = [g for k in range(6) for g in trajectory_graphs(f"t{k}", 90.0, 0.3 + 0.1 * k, 300.0, n_frames=3)]
    cfg = parse_config({**Config().model_dump(), "train": {**Config().model_dump()["train"], "law": SPEC.name,
                                                             "members": 2, "epochs": 40, "learning_rate": 0.05,
                                                             "batch_size": 4, "top_fraction": 1.0,
                                                             "tuned_params": None}})
    result = train_ensemble(graphs, cfg.train, seed=3, model_dir=tmp_path, progress=False)
    model = result.model
    assert law_name(model) == SPEC.name
    mobility = model.log_mobility.exp().detach()
    assert torch.allclose(mobility, torch.full_like(mobility, MOBILITY_EDGE), rtol=0.1), mobility
    save_ensemble(model, tmp_path / "law.pt", {"split": {"train": ["t0"], "val": []}})
    loaded, extra = load_ensemble(tmp_path / "law.pt")
    assert isinstance(loaded, LinearDragLaw) and extra["split"]["train"] == ["t0"]
    assert torch.equal(loaded.log_mobility, model.log_mobility.detach())
    preds = predict(loaded, graphs[:2])
    assert preds[0].members.shape[0] == 2 and preds[0].mean.shape == graphs[0]["node"].pos.shape
    law = MobilityLaw(loaded)
    v_zero, v_half, v_one = (law.velocities(dipole(90.0, tau))[0] for tau in (0.0, 0.25, 0.5))
    assert np.abs(v_one).max() > 10.0  # m/s
    # linear in the stress: equal steps of applied stress (on top of the dipole's own) give equal velocity steps
    np.testing.assert_allclose(v_one - v_half, v_half - v_zero, rtol=1e-6, atol=1e-6)


def test_a_file_without_a_law_name_is_a_pignn_ensemble(tmp_path):
    """Ensemble files written before the registry carry no law name: they load as the PI-GNN."""
    net = build_law("pignn", {"members": 2, "width": 4, "depth": 1})
    save_ensemble(net, tmp_path / "e.pt")
    data = torch.load(tmp_path / "e.pt", weights_only=True)
    assert data["law"] == "pignn"
    del data["law"]
    torch.save(data, tmp_path / "old.pt")
    old, _ = load_ensemble(tmp_path / "old.pt")
    assert law_name(old) == "pignn" and old.hp.members == 2
