"""Single-step errors of named (model, fitted law, graphs) evaluations, graph by graph.

For every graph: the absolute error L(D_gt, D_pred) (Angstrom, the symmetric node-to-segment distance of
dislomob.model.loss), the no-motion reference L(D_gt, D_t) (Angstrom) and the percentage error
100 * L(D_gt, D_pred) / L(D_gt, D_t), with the graph's trajectory, character angle (deg), temperature (K) and
resolved shear stress (GPa), and the mean-law floor's percentage error on the same graph
(dislomob.model.floors; for shear loops the per-character floor of dislomob.evaluate.loop_floor). Every prediction goes through dislomob.model.predict.predict.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch_geometric.data import HeteroData
from torch_geometric.loader import DataLoader

from dislomob import graph_schema as S
from dislomob.evaluate.loop_floor import floor_errors
from dislomob.model.loss import displacement_loss, relative_error
from dislomob.model.predict import predict

LAWS = ("pignn", "baseline")


@dataclass(frozen=True)
class Evaluation:
    """A named set of test graphs with the PI-GNN ensemble and the fitted law that are scored on it."""

    name: str
    model: torch.nn.Module
    baseline: torch.nn.Module
    graphs: list[HeteroData]


@dataclass(frozen=True)
class StepErrors:
    """Per-graph errors of one evaluation; ``percent`` and ``absolute_angstrom`` are keyed by law (``LAWS``)."""

    name: str
    traj: np.ndarray
    angle_deg: np.ndarray
    temperature_k: np.ndarray
    stress_gpa: np.ndarray
    reference_angstrom: np.ndarray
    absolute_angstrom: dict[str, np.ndarray]
    percent: dict[str, np.ndarray]
    floor_percent: np.ndarray | None = None

    @property
    def n_graphs(self) -> int:
        return int(len(self.traj))

    @property
    def trajectories(self) -> list[str]:
        return sorted(set(self.traj.tolist()))


def _graph_values(batch, key: str) -> list[float]:
    return getattr(batch, key).reshape(-1).double().tolist()


@torch.no_grad()
def single_step_errors(ev: Evaluation, batch_size: int = 32) -> StepErrors:
    """The per-graph errors (Angstrom, percent) of ``ev.model`` and ``ev.baseline`` on ``ev.graphs``."""
    if not ev.graphs:
        raise ValueError(f"evaluation {ev.name!r} has no graphs")
    preds = {"pignn": predict(ev.model, ev.graphs, batch_size), "baseline": predict(ev.baseline, ev.graphs, batch_size)}
    cols: dict[str, list] = {k: [] for k in ("traj", "angle_deg", "temperature_k", "stress_gpa", "reference")}
    absolute: dict[str, list[float]] = {law: [] for law in LAWS}
    percent: dict[str, list[float]] = {law: [] for law in LAWS}
    for start in range(0, len(ev.graphs), batch_size):
        chunk = ev.graphs[start:start + batch_size]
        batch = next(iter(DataLoader(chunk, batch_size=len(chunk))))
        pos = batch[S.NODE].pos
        cols["reference"] += displacement_loss(batch, torch.zeros_like(pos, dtype=torch.float64)).tolist()
        for law in LAWS:
            dx = torch.cat([p.mean for p in preds[law][start:start + batch_size]]).double()
            absolute[law] += displacement_loss(batch, dx).tolist()
            percent[law] += (100.0 * relative_error(batch, dx)).tolist()
        cols["traj"] += [str(t) for t in (batch.traj_id if isinstance(batch.traj_id, list) else [batch.traj_id])]
        for key in ("angle_deg", "temperature_k", "stress_gpa"):
            cols[key] += _graph_values(batch, key)
    f64 = lambda v: np.asarray(v, dtype=np.float64)  # noqa: E731
    return StepErrors(ev.name, np.asarray(cols["traj"]), f64(cols["angle_deg"]), f64(cols["temperature_k"]),
                      f64(cols["stress_gpa"]), f64(cols["reference"]),
                      {law: f64(v) for law, v in absolute.items()}, {law: f64(v) for law, v in percent.items()},
                      100.0 * floor_errors(ev.graphs))
