"""The floor of a shear loop's single-step error: a perfect deterministic law that knows each run's mean motion per character.

A loop's mean displacement is ~0 (it expands, it does not translate), so the dipoles' mean-law floor
(:mod:`dislomob.model.floors`, each line moved rigidly by its own mean displacement) scores ~100% on loops and
is no floor. Along a loop the character turns with the polar angle phi around the loop's centre (in its glide
plane, measured from the cell's x axis projected into the plane), so the loop's counterpart is a *mean-law floor
per character*: every node is moved by the trajectory's mean displacement at its phi, taken in each node's polar
frame (radial, tangential, normal) and fitted over all the trajectory's graphs as a Fourier series in phi up to
``HARMONICS`` (least squares; a BCC loop's speed varies mainly with 2 phi and 4 phi). It is what a
law that knew each run's mean expansion speed at every character would score with the project's
``relative_error``: line-shape fluctuations, DXA noise and the change of the loop's speed over the record are
what it leaves. Lengths in Angstrom.

A graph's line is a loop when its segments' periodic shifts sum to zero (it closes without crossing the cell);
:func:`floor_errors` uses this floor for graphs made of loops and the dipoles' mean-law floor otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch_geometric.data import HeteroData
from torch_geometric.loader import DataLoader

from dislomob import graph_schema as S
from dislomob.model.floors import line_labels, mean_law_errors
from dislomob.model.loss import relative_error

HARMONICS = 6  # Fourier orders in phi of the per-character mean motion (13 coefficients per component)


def is_loop_graph(graph: HeteroData) -> bool:
    """True when every line of ``graph`` closes without crossing the periodic cell (a shear loop)."""
    labels = line_labels(graph)
    seg = graph[S.NODE_SEG]
    shift = seg.shift.double().numpy()
    src = seg.edge_index[0].numpy()
    return all(np.allclose(shift[labels[src] == j].sum(axis=0), 0.0, atol=1e-6) for j in range(labels.max() + 1))


def _polar(graph: HeteroData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(Fourier basis in phi (n, 2 HARMONICS + 1), polar frames (n, 3, 3) with rows radial, tangential, normal,
    Cartesian displacements (n, 3))."""
    node = graph[S.NODE]
    frame = node.frame.double().numpy()
    disp = np.einsum("nij,ni->nj", frame, node.y.double().numpy())
    pos = node.pos.double().numpy()
    labels = line_labels(graph)
    normal = frame[:, 1] / np.linalg.norm(frame[:, 1], axis=1, keepdims=True)
    x_axis = graph.cell.reshape(3, 3).double().numpy()[0]
    phis = np.zeros(len(pos))
    polar = np.zeros((len(pos), 3, 3))
    for j in range(labels.max() + 1):
        on = labels == j
        n = normal[on].mean(axis=0)
        n /= np.linalg.norm(n)
        e1 = x_axis - (x_axis @ n) * n
        e1 /= np.linalg.norm(e1)
        e2 = np.cross(n, e1)
        rel = pos[on] - pos[on].mean(axis=0)
        phi = np.arctan2(rel @ e2, rel @ e1)
        phis[on] = phi
        radial = rel - np.outer(rel @ n, n)
        radial /= np.maximum(np.linalg.norm(radial, axis=1, keepdims=True), 1e-12)
        polar[on] = np.stack([radial, np.cross(n, radial), np.broadcast_to(n, radial.shape)], axis=1)
    k = np.arange(1, HARMONICS + 1)
    basis = np.hstack([np.ones((len(pos), 1)), np.cos(np.outer(phis, k)), np.sin(np.outer(phis, k))])
    return basis, polar, disp


def loop_mean_law_errors(graphs: Sequence[HeteroData], batch_size: int = 32) -> np.ndarray:
    """Per-graph relative error (n_graphs,) of the per-character mean-law floor of loops (module docstring)."""
    parts = [_polar(g) for g in graphs]
    rows: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for g, (basis, polar, disp) in zip(graphs, parts):
        rows.setdefault(str(g.traj_id), []).append((basis, np.einsum("nij,nj->ni", polar, disp)))
    coef = {t: np.linalg.lstsq(np.vstack([b for b, _ in r]), np.vstack([c for _, c in r]), rcond=None)[0]
            for t, r in rows.items()}
    out: list[float] = []
    for start in range(0, len(graphs), batch_size):
        chunk = list(graphs[start:start + batch_size])
        dx = [torch.as_tensor(np.einsum("nij,ni->nj", polar, basis @ coef[str(g.traj_id)]))
              for g, (basis, polar, _) in zip(chunk, parts[start:start + batch_size])]
        batch = next(iter(DataLoader(chunk, batch_size=len(chunk))))
        out += relative_error(batch, torch.cat(dx).to(torch.float64)).tolist()
    return np.asarray(out, dtype=np.float64)


def floor_errors(graphs: Sequence[HeteroData]) -> np.ndarray:
    """Per-graph floor (n_graphs,) in relative error: the per-character floor for loop graphs, the mean-law floor
    (:func:`dislomob.model.floors.mean_law_errors`) for the others."""
    loops = np.array([is_loop_graph(g) for g in graphs], dtype=bool)
    out = np.full(len(graphs), np.nan)
    if loops.any():
        out[loops] = loop_mean_law_errors([g for g, k in zip(graphs, loops) if k])
    if (~loops).any():
        out[~loops] = mean_law_errors([g for g, k in zip(graphs, loops) if not k])
    return out
