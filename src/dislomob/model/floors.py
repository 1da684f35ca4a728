"""What a perfect deterministic law would score on the same graphs: the floors every headline error stands beside.

*Mean-law floor*: each line of a test graph is moved rigidly by its own trajectory-mean displacement per dt
(the mean over the trajectory's graphs of the line's mean nodal displacement), which a law that knew each
run's true mean speed would predict. Its single-step relative error (the project's ``relative_error``) is
what line-shape fluctuations, DXA noise and the spread of a run's speed over time leave any law.

*Replica floor*: the same rigid law with the mean displacements of another replica of the run (same
conditions, another seed): what run-to-run scatter leaves a law that knew the conditions' mean speed.

Lines of a graph are its node cycles; a line is identified across a trajectory's graphs (and across
replicas, which start from the same configuration) by its height along the slip-plane normal. Lengths in
Angstrom.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch_geometric.data import HeteroData
from torch_geometric.loader import DataLoader

from dislomob import graph_schema as S
from dislomob.model.loss import relative_error

SAME_LINE_ANGSTROM = 3.0  # lines of one trajectory within this height of each other are the same line


def line_labels(graph: HeteroData) -> np.ndarray:
    """Line index (n_node,) of every node: the connected components of the graph's segments."""
    n = int(graph[S.NODE].pos.shape[0])
    parent = np.arange(n)

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in graph[S.NODE_SEG].edge_index.t().tolist():
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    roots = np.array([root(i) for i in range(n)])
    return np.unique(roots, return_inverse=True)[1]


def _heights_and_means(graph: HeteroData) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(labels (n_node,), line heights (k,), line mean Cartesian displacements (k,3), period along the normal)."""
    node = graph[S.NODE]
    frame = node.frame.double()
    disp = torch.einsum("nij,ni->nj", frame, node.y.double()).numpy()
    normal = frame[:, 1].numpy()
    labels = line_labels(graph)
    pos = node.pos.double().numpy()
    k = labels.max() + 1
    heights = np.array([float(np.mean(np.einsum("nk,nk->n", pos[labels == j], normal[labels == j]))) for j in range(k)])
    means = np.array([disp[labels == j].mean(axis=0) for j in range(k)])
    cell = graph.cell.reshape(3, 3).double().numpy()
    period = float(abs(cell[2] @ normal[0]))
    return labels, heights, means, period


def _nearest(h: float, groups: list[float], period: float) -> tuple[int, float]:
    d = [abs((h - g + 0.5 * period) % period - 0.5 * period) for g in groups]
    j = int(np.argmin(d))
    return j, d[j]


def trajectory_line_means(graphs: Sequence[HeteroData]) -> dict[str, list[tuple[float, np.ndarray]]]:
    """Per trajectory: (height, mean displacement per dt (3,)) of each line over all its graphs."""
    acc: dict[str, list[tuple[float, list[np.ndarray]]]] = {}
    for g in graphs:
        _, heights, means, period = _heights_and_means(g)
        groups = acc.setdefault(str(g.traj_id), [])
        for h, m in zip(heights, means):
            if groups:
                j, d = _nearest(h, [x[0] for x in groups], period)
                if d <= SAME_LINE_ANGSTROM:
                    groups[j][1].append(m)
                    continue
            groups.append((h, [m]))
    return {t: [(h, np.mean(ms, axis=0)) for h, ms in groups] for t, groups in acc.items()}


def rigid_line_errors(graphs: Sequence[HeteroData], means: Mapping[str, list[tuple[float, np.ndarray]]],
                      batch_size: int = 32) -> np.ndarray:
    """Relative error (n_graphs,) of moving each line rigidly by the mean displacement ``means`` gives its height
    in the graph's trajectory (``means[traj_id]``, matched by height); NaN for a graph with an unmatched line."""
    out: list[float] = []
    for start in range(0, len(graphs), batch_size):
        chunk = list(graphs[start:start + batch_size])
        dx, ok = [], []
        for g in chunk:
            labels, heights, _, period = _heights_and_means(g)
            ref = means.get(str(g.traj_id), [])
            rows, good = [], bool(ref)
            for h in heights:
                if not ref:
                    rows.append(np.zeros(3))
                    continue
                j, d = _nearest(h, [x[0] for x in ref], period)
                good &= d <= SAME_LINE_ANGSTROM
                rows.append(ref[j][1])
            dx.append(torch.as_tensor(np.asarray(rows)[labels]))
            ok.append(good)
        batch = next(iter(DataLoader(chunk, batch_size=len(chunk))))
        err = relative_error(batch, torch.cat(dx).to(torch.float64)).tolist()
        out += [e if good else float("nan") for e, good in zip(err, ok)]
    return np.asarray(out, dtype=np.float64)


def mean_law_errors(graphs: Sequence[HeteroData]) -> np.ndarray:
    """Per-graph relative error (n_graphs,) of the mean-law floor (module docstring)."""
    return rigid_line_errors(graphs, trajectory_line_means(graphs))
