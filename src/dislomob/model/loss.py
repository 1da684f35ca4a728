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
                    cell: Tensor, points_ref: Tensor | None = None, seg_start_ref: Tensor | None = None) -> Tensor:
    """Squared distance (..., n_points) Angstrom^2 of each point to the nearest segment of its own graph.

    Node-to-segment distance (Eq. 3): the projection onto the segment when its foot lies on the
    segment, else the nearer end; minimum image in the graph's cell (n_graphs, 3, 3). With leading
    (ensemble) dimensions the periodic image of each pair is chosen once from the mean configuration
    over them, or from ``points_ref`` / ``seg_start_ref`` (no leading dimensions) where given. The nearest
    segment is searched over all (graph, point, segment) pairs without
    autograd; only the distance to it is differentiated (the gradient of a minimum is the gradient of
    its smallest element), so the autograd graph grows with points, not with points x segments.
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
    ref_s = _dense(seg_start_ref, seg_batch, n_graphs)[0] if seg_start_ref is not None else _mean_lead(start, len(lead))
    ref_p = _dense(points_ref, point_batch, n_graphs)[0] if points_ref is not None else _mean_lead(pts, len(lead))
    ref_d0 = ref_s.detach()[:, None, :, :] - ref_p.detach()[:, :, None, :]  # (G, P, S, 3)
    cell = cell.to(points.dtype)
    shift = torch.einsum("gpsa,gab->gpsb", torch.round(torch.einsum("gpsa,gab->gpsb", ref_d0, torch.linalg.inv(cell))),
                         cell)
    nearest = _nearest_segment(pts, start, vec, s_mask, shift)  # (..., G, P)
    # plain advanced indexing: its backward accumulates into (..., G, S, 3), not into a (..., G, P, S, 3) copy
    n_g, n_p = nearest.shape[-2], nearest.shape[-1]
    flat = nearest.reshape(-1, n_g, n_p)
    l_i = torch.arange(flat.shape[0], device=flat.device)[:, None, None]
    g_i = torch.arange(n_g, device=flat.device)[None, :, None]
    p_i = torch.arange(n_p, device=flat.device)[None, None, :]
    pick = lambda x: x.reshape((-1,) + x.shape[-3:])[l_i, g_i, flat].reshape(nearest.shape + (3,))  # noqa: E731
    start_n, vec_n = pick(start), pick(vec)
    shift_n = shift[g_i, p_i, flat].reshape(nearest.shape + (3,))
    mask_n = s_mask[g_i, flat].reshape(nearest.shape)
    near = _segment_sq(start_n - pts - shift_n, vec_n, mask_n)
    out = torch.empty(lead + (len(point_batch),), dtype=near.dtype, device=near.device)
    out[..., p_order] = near[..., pb, p_slot]
    return out


SEARCH_CHUNK_PAIRS = 1 << 16


@torch.no_grad()
def _nearest_segment(pts: Tensor, start: Tensor, vec: Tensor, s_mask: Tensor, shift: Tensor) -> Tensor:
    """Index (..., G, P) of the nearest segment of each padded point, over all segments of its graph.

    Component-wise (x, y, z as separate (chunk, P, S) arrays, no reductions over a length-3 axis) in
    chunks of ~SEARCH_CHUNK_PAIRS (point, segment) pairs so the temporaries stay in cache; a NaN
    distance wins (argmin), so a NaN position still gives a NaN loss.
    """
    lead = pts.shape[:-3]
    n_g, n_p, n_s = pts.shape[-3], pts.shape[-2], start.shape[-2]
    # graph-major (G, L, P or S) components, so a chunk of graphs slices the per-graph shift and mask
    comp = lambda x, n: x.expand(lead + (n_g, n, 3)).reshape(-1, n_g, n, 3).transpose(0, 1).unbind(-1)  # noqa: E731
    px, py, pz = comp(pts, n_p)
    sx, sy, sz = comp(start, n_s)
    ex, ey, ez = comp(vec, n_s)
    hx, hy, hz = shift.unbind(-1)  # (G, P, S)
    inv_ee = 1.0 / (ex * ex + ey * ey + ez * ez).clamp_min(EPS_ANGSTROM**2)
    n_l = px.shape[1]
    far = ~s_mask[:, None, None, :]
    step = max(1, SEARCH_CHUNK_PAIRS // max(1, n_l * n_p * n_s))
    out = torch.empty(n_g, n_l, n_p, dtype=torch.long, device=pts.device)
    for i in range(0, n_g, step):
        g = slice(i, i + step)
        dx = sx[g, :, None, :] - px[g, :, :, None] - hx[g, None]
        dy = sy[g, :, None, :] - py[g, :, :, None] - hy[g, None]
        dz = sz[g, :, None, :] - pz[g, :, :, None] - hz[g, None]
        ux, uy, uz = ex[g, :, None, :], ey[g, :, None, :], ez[g, :, None, :]
        u = (-(dx * ux + dy * uy + dz * uz) * inv_ee[g, :, None, :]).clamp_(0.0, 1.0)
        dx.addcmul_(u, ux)
        dy.addcmul_(u, uy)
        dz.addcmul_(u, uz)
        d2 = dx.mul_(dx).addcmul_(dy, dy).addcmul_(dz, dz)
        d2.masked_fill_(far[g], float("inf"))
        out[g] = torch.argmin(d2, dim=-1)
    return out.transpose(0, 1).reshape(lead + (n_g, n_p))


def line_distance(points: Tensor, point_batch: Tensor, seg_start: Tensor, seg_vec: Tensor, seg_batch: Tensor,
                  cell: Tensor, points_ref: Tensor | None = None, seg_start_ref: Tensor | None = None) -> Tensor:
    """l(D1, D2) = sqrt(sum_i l(N_i, D2)^2) (..., n_graphs) Angstrom, points of D1 to segments of D2."""
    d2 = node_to_line_sq(points, point_batch, seg_start, seg_vec, seg_batch, cell, points_ref, seg_start_ref)
    total = d2.new_zeros(d2.shape[:-1] + (cell.shape[0],)).index_add(-1, point_batch, d2)
    positive = total > 0
    return torch.where(positive, torch.sqrt(torch.where(positive, total, torch.ones_like(total))), 0.0 * total)


def symmetric_distance(pos1: Tensor, lines1: Polylines, pos2: Tensor, lines2: Polylines, cell: Tensor,
                       ref2: Tensor | None = None) -> Tensor:
    """L(D1, D2) = (l(D1,D2) + l(D2,D1)) / 2 (Eq. 4), (..., n_graphs) Angstrom; positions may carry leading dims.

    ``ref2`` (n2, 3), when given, is where configuration 2 should be: the periodic image of each pair is
    chosen from it instead of from pos2 (a prediction that went the wrong way round the cell then pays
    for the distance it really is off).
    """
    s1, e1 = lines1.segment_vectors(pos1, cell)
    s2, e2 = lines2.segment_vectors(pos2, cell)
    s2_ref = lines2.segment_vectors(ref2.to(pos2.dtype), cell)[0] if ref2 is not None else None
    lead = torch.broadcast_shapes(pos1.shape[:-2], pos2.shape[:-2])
    pos1, s1, e1 = (t.expand(lead + t.shape[-2:]) for t in (pos1, s1, e1))
    pos2, s2, e2 = (t.expand(lead + t.shape[-2:]) for t in (pos2, s2, e2))
    b1, b2 = lines1.batch, lines2.batch
    d12 = line_distance(pos1, b1, s2, e2, b2[lines2.src], cell, seg_start_ref=s2_ref)
    d21 = line_distance(pos2, b2, s1, e1, b1[lines1.src], cell, points_ref=ref2)
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
    """Per-graph loss L(D_gt, D_pred) (..., n_graphs) Angstrom for Cartesian displacements dx (..., n_node, 3).

    Periodic images are chosen from the true displaced nodes (positions + the target displacements
    ``node.y``, unwrapped through the intermediate frames by featurize) where the graphs carry them.
    """
    nodes, targets, cell = batch_lines(batch)
    node = batch[S.NODE]
    pred = node.pos.to(dx.dtype) + dx
    ref = None
    if getattr(node, "y", None) is not None and getattr(node, "frame", None) is not None:
        ref = node.pos.to(dx.dtype) + torch.einsum("nij,ni->nj", node.frame.to(dx.dtype), node.y.to(dx.dtype))
    return symmetric_distance(batch[S.TARGET].pos.to(dx.dtype), targets, pred, nodes, cell, ref)


def relative_error(batch, dx: Tensor) -> Tensor:
    """Single-step relative error per graph: L(D_gt, D_pred) / L(D_gt, D_t) (dimensionless, (..., n_graphs))."""
    still = displacement_loss(batch, torch.zeros_like(batch[S.NODE].pos, dtype=dx.dtype))
    return displacement_loss(batch, dx) / still.clamp_min(EPS_ANGSTROM)
