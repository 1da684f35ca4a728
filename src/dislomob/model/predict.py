"""One prediction entry point for every consumer (evaluation, consistency checks, active learning, DDD).

``predict(law, graphs)`` takes any registered mobility law (dislomob.model.laws: a module whose forward maps a
graph batch to {"dx": per-member Cartesian nodal displacements (K, n, 3)}, with an optional boolean ``active``
(K,) of the members that predict: the PI-GNN ensemble, the fitted phenomenological law) and returns, per
graph, the mean displacement, its variance over the active members and their displacements, all in Angstrom
over each graph's ``dt_ps``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch_geometric.data import HeteroData
from torch_geometric.loader import DataLoader

from dislomob import graph_schema as S


@dataclass(frozen=True)
class GraphPrediction:
    """Nodal displacements (Angstrom) of one graph: mean (n,3), variance (n,3), members (K,n,3)."""

    mean: Tensor
    var: Tensor
    members: Tensor


@torch.no_grad()
def predict(law: torch.nn.Module, graphs: list[HeteroData], batch_size: int = 32) -> list[GraphPrediction]:
    """Predictions for ``graphs`` in order; an ensemble contributes its active members (paper Eq. 6-7)."""
    out: list[GraphPrediction] = []
    for batch in DataLoader(graphs, batch_size=batch_size):
        members = law(batch)["dx"]
        active = getattr(law, "active", None)
        if active is not None:
            members = members[active]
        if members.shape[0] == 0:
            raise ValueError("no active ensemble member: run select_top first")
        mean = members.mean(0)
        var = ((members - mean) ** 2).mean(0)
        graph = getattr(batch[S.NODE], "batch", None)
        if graph is None:
            graph = torch.zeros(mean.shape[0], dtype=torch.long)
        for g in range(batch.num_graphs):
            sel = graph == g
            out.append(GraphPrediction(mean[sel], var[sel], members[:, sel]))
    return out
