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
DEFAULT_CANDIDATES = 8


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


def _segment_sq(d0: Tensor, e: Tensor, mask: Tensor) -> Tensor:
    """Squared distance from the origin of d0 (point -> segment start) to segments of vector e; inf where masked."""
    ee = (e * e).sum(-1).clamp_min(EPS_ANGSTROM**2)
    u = (-(d0 * e).sum(-1) / ee).clamp(0.0, 1.0)
    v = d0 + u[..., None] * e
    d2 = (v * v).sum(-1)  # not |d0|^2 + 2u d0.e + u^2 e.e: that cancels badly in float32
    return torch.where(mask, d2, torch.full_like(d2, float("inf")))


def _mean_lead(x: Tensor, n_lead: int) -> Tensor:
    return x.detach().reshape((-1,) + x.shape[n_lead:]).mean(0) if n_lead else x.detach()


def node_to_line_sq(points: Tensor, point_batch: Tensor, seg_start: Tensor, seg_vec: Tensor, seg_batch: Tensor,
                    cell: Tensor, candidates: int | None = DEFAULT_CANDIDATES) -> Tensor:
    """Squared distance (..., n_points) Angstrom^2 of each point to the nearest segment of its own graph.

    Node-to-segment distance (Eq. 3): the projection onto the segment when its foot lies on the
    segment, else the nearer end; minimum image in the graph's cell (n_graphs, 3, 3). Pairs are
    evaluated on zero-padded (graph, point, segment) blocks. With leading (ensemble) dimensions the
    periodic image of each pair is chosen once from the mean configuration over them. Only the
    ``candidates`` segments with the smallest lower bound are evaluated exactly; points where the
    bound cannot prove that no other segment is nearer are evaluated over all segments
    (``candidates=None`` always evaluates all).
    """
    n_graphs = cell.shape[0]
    lead = points.shape[:-2]
    empty = (torch.bincount(seg_batch, minlength=n_graphs) == 0) & (torch.bincount(point_batch, minlength=n_graphs) > 0)
    if bool(empty.any()):
        g = int(torch.nonzero(empty)[0])
        raise ValueError(f"graph {g} has points but no segments to measure their distance to")
    pts, p_mask, p_order, pb, p_slot = _dense(points, point_batch, n_graphs)
    start, s_mask, _, _, _ = _dense(seg_start, seg_batch, n_graphs)
    vec, _, _, _, _ = _dense(seg_vec, seg_batch, n_graphs)
    ref_d0 = _mean_lead(start, len(lead))[:, None, :, :] - _mean_lead(pts, len(lead))[:, :, None, :]  # (G, P, S, 3)
    cell = cell.to(points.dtype)
    shift = torch.einsum("gpsa,gab->gpsb", torch.round(torch.einsum("gpsa,gab->gpsb", ref_d0, torch.linalg.inv(cell))),
                         cell)
    if candidates is not None and start.shape[-2] > candidates:
        near = _pruned(pts, start, vec, s_mask, p_mask, shift, candidates)
    else:
        d0 = start[..., :, None, :, :] - pts[..., :, :, None, :] - shift  # (..., G, P, S, 3)
        near = torch.amin(_segment_sq(d0, vec[..., :, None, :, :], s_mask[:, None, :]), dim=-1)  # NaN propagates
    out = torch.empty(lead + (len(point_batch),), dtype=near.dtype, device=near.device)
    out[..., p_order] = near[..., pb, p_slot]
    return out


def _pruned(pts: Tensor, start: Tensor, vec: Tensor, s_mask: Tensor, p_mask: Tensor, shift: Tensor,
            k: int) -> Tensor:
    """Nearest-segment squared distances (..., G, P) from k candidate segments per point and member; entries
    the bound cannot prove (another segment might be nearer) are recomputed over all segments.

    A segment's distance is >= |point - midpoint| - half its length; the k segments with the smallest
    such bound are evaluated exactly, and the result stands where it is <= every other segment's bound.
    """
    with torch.no_grad():
        mid = start + 0.5 * vec
        lower = (mid[..., :, None, :, :] - pts[..., :, :, None, :] - shift).norm(dim=-1)
        lower = lower - 0.5 * vec.norm(dim=-1)[..., :, None, :]
        lower = lower.masked_fill(~s_mask[:, None, :], float("inf"))
        cand = torch.topk(lower, k, dim=-1, largest=False).indices  # (..., G, P, k)
        bound = lower.scatter(-1, cand, float("inf")).amin(-1)
    # plain advanced indexing (its backward accumulates into (..., G, S, 3), not into a broadcast copy)
    n_g, n_p = cand.shape[-3], cand.shape[-2]
    flat = cand.reshape((-1, n_g, n_p, k))
    l_i = torch.arange(flat.shape[0], device=cand.device)[:, None, None, None]
    g_i = torch.arange(n_g, device=cand.device)[None, :, None, None]
    p_i = torch.arange(n_p, device=cand.device)[None, None, :, None]
    start_c = start.reshape((-1,) + start.shape[-3:])[l_i, g_i, flat].reshape(cand.shape + (3,))
    vec_c = vec.reshape((-1,) + vec.shape[-3:])[l_i, g_i, flat].reshape(cand.shape + (3,))
    shift_c = shift[g_i, p_i, flat].reshape(cand.shape + (3,))
    mask_c = s_mask[g_i, flat].reshape(cand.shape)
    near = torch.amin(_segment_sq(start_c - pts[..., None, :] - shift_c, vec_c, mask_c), dim=-1)
    with torch.no_grad():
        proven = (near.sqrt() <= bound) | ~p_mask
    if bool(proven.all()):
        return near
    return _fill_unproven(near, ~proven, pts, start, vec, s_mask, shift)


def _fill_unproven(near: Tensor, todo: Tensor, pts: Tensor, start: Tensor, vec: Tensor, s_mask: Tensor,
                   shift: Tensor) -> Tensor:
    """``near`` with the (member, graph, point) entries flagged in ``todo`` recomputed over all segments."""
    n_lead = near.dim() - 2
    rows = torch.nonzero(todo.expand(near.shape))  # (r, n_lead + 2): lead..., graph, point
    lead_idx, g, p = tuple(rows[:, i] for i in range(n_lead)), rows[:, -2], rows[:, -1]
    d0 = start[lead_idx + (g,)] - pts[lead_idx + (g, p)][:, None, :] - shift[g, p]
    full = torch.amin(_segment_sq(d0, vec[lead_idx + (g,)], s_mask[g]), dim=-1)
    return near.index_put(lead_idx + (g, p), full)


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
