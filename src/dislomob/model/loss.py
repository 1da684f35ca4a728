"""Symmetric node-to-segment distance between dislocation configurations (paper Eq. 3-5).

Lengths in Angstrom. Every graph of a batch holds two polylines: the predicted line (nodes plus
predicted displacements, segments ``('node','seg','node')``) and the ground truth at t + dt
(``target`` vertices, segments ``('target','seg','target')``). Distances use the minimum image of
each graph's periodic cell. All functions accept leading ensemble dimensions on the positions
(``(..., n, 3)``) and return per-graph values ``(..., n_graphs)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from dislomob import graph_schema as S

EPS_ANGSTROM = 1e-6


@dataclass(frozen=True)
class Polylines:
    """Segments of a batch of polylines: start node index, end node index, end shift (Angstrom), graph of each node."""

    src: Tensor
    dst: Tensor
    shift: Tensor | None
    batch: Tensor

    def segment_vectors(self, pos: Tensor, cell: Tensor) -> tuple[Tensor, Tensor]:
        """(starts, vectors) (..., n_seg, 3) Angstrom of the segments for node positions ``pos`` (..., n, 3)."""
        start = pos[..., self.src, :]
        vec = pos[..., self.dst, :] - start
        if self.shift is not None:
            vec = vec + self.shift.to(pos.dtype)
        else:
            vec = minimum_image(vec, cell, self.batch[self.src])
        return start, vec


def minimum_image(vec: Tensor, cell: Tensor, index: Tensor | None = None) -> Tensor:
    """Vectors (..., k, 3) Angstrom reduced to their shortest image in cells (rows = cell vectors).

    ``cell`` is (k, 3, 3), or (n_graphs, 3, 3) with ``index`` (k,) naming each vector's graph.
    """
    cell = cell.to(vec.dtype)
    inv = torch.linalg.inv(cell)
    if index is not None:
        cell, inv = cell[index], inv[index]
    frac = torch.einsum("...ka,kab->...kb", vec, inv)
    return vec - torch.einsum("...ka,kab->...kb", torch.round(frac).detach(), cell)


def _dense(x: Tensor, batch: Tensor, n_graphs: int) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Rows of x (..., k, 3) grouped by graph: (padded (..., n_graphs, k_max, 3), mask (n_graphs, k_max),
    sort order, graph and slot of each sorted row)."""
    order = torch.argsort(batch, stable=True)
    b = batch[order]
    count = torch.bincount(b, minlength=n_graphs)
    ptr = torch.cat([count.new_zeros(1), torch.cumsum(count, 0)])
    slot = torch.arange(len(b), device=b.device) - ptr[b]
    k_max = int(count.max()) if len(b) else 0
    out = x.new_zeros(x.shape[:-2] + (n_graphs, k_max, 3))
    out[..., b, slot, :] = x[..., order, :]
    mask = torch.zeros(n_graphs, k_max, dtype=torch.bool, device=x.device)
    mask[b, slot] = True
    return out, mask, order, b, slot


def node_to_line_sq(points: Tensor, point_batch: Tensor, seg_start: Tensor, seg_vec: Tensor, seg_batch: Tensor,
                    cell: Tensor) -> Tensor:
    """Squared distance (..., n_points) Angstrom^2 of each point to the nearest segment of its own graph.

    Node-to-segment distance (Eq. 3): the projection onto the segment when its foot lies on the
    segment, else the nearer end; minimum image in the graph's cell (n_graphs, 3, 3). All pairs of
    a graph are evaluated at once on zero-padded (graph, point, segment) blocks. With leading
    (ensemble) dimensions the periodic image of each pair is chosen once, from the mean over them.
    """
    n_graphs = cell.shape[0]
    lead = points.shape[:-2]
    empty = (torch.bincount(seg_batch, minlength=n_graphs) == 0) & (torch.bincount(point_batch, minlength=n_graphs) > 0)
    if bool(empty.any()):
        g = int(torch.nonzero(empty)[0])
        raise ValueError(f"graph {g} has points but no segments to measure their distance to")
    pts, _, p_order, pb, p_slot = _dense(points, point_batch, n_graphs)
    start, s_mask, _, _, _ = _dense(seg_start, seg_batch, n_graphs)
    vec, _, _, _, _ = _dense(seg_vec, seg_batch, n_graphs)
    d0 = start[..., :, None, :, :] - pts[..., :, :, None, :]  # (..., G, P, S, 3)
    ref = d0.detach().reshape((-1,) + d0.shape[len(lead):]).mean(0) if lead else d0.detach()
    cell = cell.to(points.dtype)
    frac = torch.einsum("gpsa,gab->gpsb", ref, torch.linalg.inv(cell))
    d0 = d0 - torch.einsum("gpsa,gab->gpsb", torch.round(frac), cell)
    e = vec[..., :, None, :, :]
    ee = (vec * vec).sum(-1).clamp_min(EPS_ANGSTROM**2)[..., :, None, :]
    de = (d0 * e).sum(-1)
    u = (-de / ee).clamp(0.0, 1.0)
    v = d0 + u[..., None] * e
    d2 = (v * v).sum(-1)  # not |d0|^2 + 2u d0.e + u^2 e.e: that cancels badly in float32
    d2 = torch.where(s_mask[:, None, :], d2, torch.full_like(d2, float("inf")))
    near = torch.amin(d2, dim=-1)  # (..., G, P); NaN propagates
    out = torch.empty(lead + (len(point_batch),), dtype=near.dtype, device=near.device)
    out[..., p_order] = near[..., pb, p_slot]
    return out


def line_distance(points: Tensor, point_batch: Tensor, seg_start: Tensor, seg_vec: Tensor, seg_batch: Tensor,
                  cell: Tensor) -> Tensor:
    """l(D1, D2) = sqrt(sum_i l(N_i, D2)^2) (..., n_graphs) Angstrom, points of D1 to segments of D2."""
    d2 = node_to_line_sq(points, point_batch, seg_start, seg_vec, seg_batch, cell)
    total = d2.new_zeros(d2.shape[:-1] + (cell.shape[0],)).index_add(-1, point_batch, d2)
    positive = total > 0
    return torch.where(positive, torch.sqrt(torch.where(positive, total, torch.ones_like(total))), 0.0 * total)


def symmetric_distance(pos1: Tensor, lines1: Polylines, pos2: Tensor, lines2: Polylines, cell: Tensor) -> Tensor:
    """L(D1, D2) = (l(D1,D2) + l(D2,D1)) / 2 (Eq. 4), (..., n_graphs) Angstrom; positions may carry leading dims."""
    s1, e1 = lines1.segment_vectors(pos1, cell)
    s2, e2 = lines2.segment_vectors(pos2, cell)
    lead = torch.broadcast_shapes(pos1.shape[:-2], pos2.shape[:-2])
    pos1, s1, e1 = (t.expand(lead + t.shape[-2:]) for t in (pos1, s1, e1))
    pos2, s2, e2 = (t.expand(lead + t.shape[-2:]) for t in (pos2, s2, e2))
    b1, b2 = lines1.batch, lines2.batch
    d12 = line_distance(pos1, b1, s2, e2, b2[lines2.src], cell)
    d21 = line_distance(pos2, b2, s1, e1, b1[lines1.src], cell)
    return 0.5 * (d12 + d21)


def _batch_vector(store, n: int, device: torch.device) -> Tensor:
    b = getattr(store, "batch", None)
    return b if b is not None else torch.zeros(n, dtype=torch.long, device=device)


def batch_lines(batch) -> tuple[Polylines, Polylines, Tensor]:
    """(current/predicted node lines, target lines, cells (n_graphs,3,3)) of a (batched) graph_schema HeteroData."""
    node_pos, tgt_pos = batch[S.NODE].pos, batch[S.TARGET].pos
    nb = _batch_vector(batch[S.NODE], len(node_pos), node_pos.device)
    tb = _batch_vector(batch[S.TARGET], len(tgt_pos), tgt_pos.device)
    cell = batch.cell.reshape(-1, 3, 3).to(node_pos.dtype)
    ns, ts = batch[S.NODE_SEG], batch[S.TARGET_SEG]
    nodes = Polylines(ns.edge_index[0], ns.edge_index[1], getattr(ns, "shift", None), nb)
    targets = Polylines(ts.edge_index[0], ts.edge_index[1], getattr(ts, "shift", None), tb)
    return nodes, targets, cell


def displacement_loss(batch, dx: Tensor) -> Tensor:
    """Per-graph loss L(D_gt, D_pred) (..., n_graphs) Angstrom for Cartesian displacements dx (..., n_node, 3)."""
    nodes, targets, cell = batch_lines(batch)
    pred = batch[S.NODE].pos.to(dx.dtype) + dx
    return symmetric_distance(batch[S.TARGET].pos.to(dx.dtype), targets, pred, nodes, cell)


def relative_error(batch, dx: Tensor) -> Tensor:
    """Single-step relative error per graph: L(D_gt, D_pred) / L(D_gt, D_t) (dimensionless, (..., n_graphs))."""
    still = displacement_loss(batch, torch.zeros_like(batch[S.NODE].pos, dtype=dx.dtype))
    return displacement_loss(batch, dx) / still.clamp_min(EPS_ANGSTROM)
