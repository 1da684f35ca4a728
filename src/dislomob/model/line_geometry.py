"""Geometry of the current dislocation lines at their nodes: unit tangents and motion axes (dimensionless)."""

from __future__ import annotations

import torch
from torch import Tensor

from dislomob.model.loss import batch_lines


def node_tangent(batch, dtype: torch.dtype = torch.float32) -> Tensor:
    """Unit tangent (n, 3) at every node of a graph_schema batch: the mean of the unit vectors of its two
    segments (periodic closures use the stored segment shifts)."""
    from dislomob import graph_schema as S

    lines, _, cell = batch_lines(batch)
    pos = batch[S.NODE].pos.to(dtype)
    start, vec = lines.segment_vectors(pos, cell.to(dtype))
    unit = vec / vec.norm(dim=-1, keepdim=True).clamp_min(1e-9)
    tangent = unit.new_zeros(pos.shape[0], 3).index_add(0, lines.src, unit).index_add(0, lines.dst, unit)
    return tangent / tangent.norm(dim=-1, keepdim=True).clamp_min(1e-9)


def motion_axes(tangent: Tensor, frame: Tensor) -> Tensor:
    """(n, 2, 3): m_hat = n_hat x xi (in the slip plane, perpendicular to the line) and c_hat = xi x m_hat,
    for unit tangents xi (n, 3) and frames (n, 3, 3) with rows (b_hat, n_hat, s_hat)."""
    m = torch.cross(frame[:, 1], tangent, dim=-1)
    m = m / m.norm(dim=-1, keepdim=True).clamp_min(1e-9)
    c = torch.cross(tangent, m, dim=-1)
    return torch.stack([m, c / c.norm(dim=-1, keepdim=True).clamp_min(1e-9)], dim=1)


def node_stress(batch, dtype: torch.dtype = torch.float32) -> Tensor:
    """Cartesian stress (n, 3, 3) GPa at every node: the mean over the Gauss points of its adjacent segments."""
    from dislomob import graph_schema as S

    node, gp = batch[S.NODE], batch[S.GP]
    if not hasattr(gp, "stress_gpa"):
        raise ValueError("the graphs carry no Gauss-point stress ('gp'.stress_gpa)")
    n = node.pos.shape[0]
    src, dst = batch[S.GP_TO_NODE].edge_index
    sigma = gp.stress_gpa.to(dtype)
    total = sigma.new_zeros(n, 3, 3).index_add(0, dst, sigma[src])
    return total / torch.bincount(dst, minlength=n).clamp_min(1).to(dtype)[:, None, None]
