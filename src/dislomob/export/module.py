"""The trained ensemble as one plain-tensor module that ``torch.export`` can capture.

:class:`ExportLaw` does in torch what :func:`dislomob.ddd.network_graph.network_graph` (quadrature-stress
path) and :func:`dislomob.model.predict.predict` on an :class:`dislomob.model.pignn.EnsemblePIGNN` do, with
``index_add`` aggregations instead of PyG message passing and no data-dependent shapes. Its state dict has
exactly the keys of the ensemble's; :meth:`ExportLaw.from_ensemble` keeps the active members' weights only. Inputs and
outputs follow :mod:`dislomob.export.contract` (Angstrom, GPa, K in; m/s out).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from dislomob.ddd.network import NODE_PINNED
from dislomob.export.contract import U_CLIP
from dislomob.features.invariants import gp_invariants
from dislomob.model.consistency import ANGSTROM_PER_PS_TO_M_PER_S
from dislomob.model.ensemble import active_state_dict
from dislomob.model.heterosage import GroupedLinear
from dislomob.model.line_geometry import motion_axes
from dislomob.model.pignn import EnsemblePIGNN, PIGNNHParams, eq2_factor, mobility_head

U_KEY_STRIDE = 4.0  # sort key segment * stride + u keeps the segments apart for u in U_CLIP


class _Layer(nn.Module):
    """The weights of one HeteroSAGE layer (same names as dislomob.model.heterosage.HeteroSAGELayer)."""

    def __init__(self, groups: int, node_in: int, gp_in: int, width: int, update_gp: bool):
        super().__init__()
        seeds = [0] * groups
        self.node_from_gp = GroupedLinear(groups, gp_in, width, seeds)
        self.node_self = GroupedLinear(groups, node_in, width, seeds, bias=False)
        self.update_gp = update_gp
        if update_gp:
            self.gp_from_node = GroupedLinear(groups, width, width, seeds)
            self.gp_self = GroupedLinear(groups, gp_in, width, seeds, bias=False)


class _Trunk(nn.Module):
    """HeteroSAGE weights of ``groups`` stacked nets of one width (same names as dislomob.model.heterosage.HeteroSAGE)."""

    def __init__(self, hp: PIGNNHParams, groups: int, width: int):
        super().__init__()
        self.layers = nn.ModuleList(
            _Layer(groups, hp.node_in if k == 0 else width, hp.gp_in if k == 0 else width, width, k < hp.depth - 1)
            for k in range(hp.depth))

    def forward(self, h_node: Tensor, h_gp: Tensor, src: Tensor, dst: Tensor, node_count: Tensor) -> Tensor:
        """Node embeddings (n, groups, width) after the layers (mean aggregation both ways, as HeteroSAGE)."""
        for layer in self.layers:
            agg = gp_mean_at_nodes(h_gp, src, dst, node_count)
            h_node = torch.relu(layer.node_from_gp(agg) + layer.node_self(h_node))
            if layer.update_gp:
                agg = node_mean_at_gps(h_node, src, dst, h_gp.shape[0] // h_node.shape[0])
                h_gp = torch.relu(layer.gp_from_node(agg) + layer.gp_self(h_gp))
        return h_node


def gp_mean_at_nodes(x: Tensor, src: Tensor, dst: Tensor, count: Tensor) -> Tensor:
    """Mean over the Gauss points of both segments at each node of GP features x (n * n_gauss, ...) -> (n, ...).

    GP k * n_gauss + j lies on segment k (src[k] -> dst[k]) and is an edge to both its nodes (the graph_schema
    GP-node edges), so a node's sum is the sums of its segments' points: one scatter of n rows per end
    instead of a gather and scatter of 2 * n * n_gauss edge rows."""
    seg = x.reshape((src.shape[0], -1) + tuple(x.shape[1:])).sum(1)
    total = torch.zeros_like(seg).index_add(0, src, seg).index_add(0, dst, seg)
    return total / count.reshape((-1,) + (1,) * (x.dim() - 1))


def node_mean_at_gps(x: Tensor, src: Tensor, dst: Tensor, n_gauss: int) -> Tensor:
    """Mean of the two end nodes' features x (n, ...) at every Gauss point of their segment -> (n * n_gauss, ...)."""
    seg = 0.5 * (x[src] + x[dst])
    return seg.unsqueeze(1).expand((seg.shape[0], n_gauss) + tuple(seg.shape[1:])).reshape(
        (-1,) + tuple(seg.shape[1:]))


def inverse_3x3(a: Tensor) -> Tensor:
    """Inverse of a 3x3 matrix from cross products of its rows (no LAPACK call in the compiled package)."""
    cols = torch.stack([torch.cross(a[1], a[2], dim=-1), torch.cross(a[2], a[0], dim=-1),
                        torch.cross(a[0], a[1], dim=-1)], dim=1)
    return cols / (a[0] * cols[:, 0]).sum()


def frames_from(burgers: Tensor, normals: Tensor) -> Tensor:
    """Frames (n, 3, 3) rows (b_hat, n_hat, s_hat) of Burgers vectors and plane normals (n, 3), as
    dislomob.features.local_frame.line_frame builds them (the in-plane check is the caller's)."""
    bh = burgers / burgers.norm(dim=-1, keepdim=True)
    nh = normals / normals.norm(dim=-1, keepdim=True)
    nh = nh - (nh * bh).sum(-1, keepdim=True) * bh
    nh = nh / nh.norm(dim=-1, keepdim=True)
    return torch.stack([bh, nh, torch.cross(bh, nh, dim=-1)], dim=1)


def interpolate_stress(q_segment: Tensor, q_u: Tensor, q_stress: Tensor, segment: Tensor, u: Tensor) -> Tensor:
    """Stress (p, 3, 3) GPa at (segment, u) from quadrature points (segment, u, stress): linear in u between the
    two nearest points of the segment, the nearest point's stress beyond them (every segment needs a point)."""
    key = q_segment.to(u.dtype) * U_KEY_STRIDE + q_u.clamp(*U_CLIP)
    key, order = torch.sort(key, stable=True)
    q_seg, q_uu, q_s = q_segment[order], q_u.clamp(*U_CLIP)[order], q_stress[order]
    n = key.shape[0]
    right = torch.searchsorted(key, segment.to(u.dtype) * U_KEY_STRIDE + u, right=True)
    left = right - 1
    left_ok = (left >= 0) & (q_seg[left.clamp(0, n - 1)] == segment)
    right_ok = (right < n) & (q_seg[right.clamp(0, n - 1)] == segment)
    lo = torch.where(left_ok, left, right).clamp(0, n - 1)
    hi = torch.where(right_ok, right, left).clamp(0, n - 1)
    du = q_uu[hi] - q_uu[lo]
    pos = du > 0
    w = torch.where(pos, (u - q_uu[lo]) / torch.where(pos, du, torch.ones_like(du)), torch.zeros_like(du))
    w = w.clamp(0.0, 1.0)[:, None, None]
    return (1.0 - w) * q_s[lo] + w * q_s[hi]


class ExportLaw(nn.Module):
    """The ensemble's active members on contract tensors -> (velocity (n, 3) m/s, sigma (n,) m/s)."""

    def __init__(self, hp: PIGNNHParams, n_gauss: int):
        super().__init__()
        if n_gauss < 1:
            raise ValueError(f"n_gauss={n_gauss}: allowed >= 1")
        self.hp = hp
        m = hp.members
        seeds = [0] * m
        wf, wb, we = hp.net_widths
        if wf == wb == we:  # EnsemblePIGNN's layout: one stacked trunk, or one trunk per net of its own width
            self.trunk, self.trunks = _Trunk(hp, 3 * m, wf), None
        else:
            self.trunk, self.trunks = None, nn.ModuleList([_Trunk(hp, m, w) for w in hp.net_widths])
        self.head_f = GroupedLinear(m, wf, 1 if hp.glide_only else 2, seeds)
        self.head_b = GroupedLinear(m, wb, 1, seeds)
        self.head_e = GroupedLinear(m, we, 1, seeds)
        for name, size in (("node_mean", hp.node_in), ("node_std", hp.node_in), ("gp_mean", hp.gp_in),
                           ("gp_std", hp.gp_in)):
            self.register_buffer(name, torch.zeros(size))
        self.register_buffer("speed_scale", torch.ones(()))
        self.register_buffer("force_scale", torch.ones(()))
        self.register_buffer("active", torch.ones(m, dtype=torch.bool))
        u = 0.5 * (np.polynomial.legendre.leggauss(n_gauss)[0] + 1.0)
        self.register_buffer("gauss_u", torch.as_tensor(u, dtype=torch.float64), persistent=False)
        self.register_buffer("active_index", torch.arange(m), persistent=False)
        self.n_gauss = n_gauss
        self.ensemble_members = m

    @classmethod
    def from_ensemble(cls, model: EnsemblePIGNN, n_gauss: int, dtype: torch.dtype = torch.float64) -> ExportLaw:
        """The export module of ``model``'s active members only (the inactive ones never reach the mean and
        variance, so they are not computed) with ``n_gauss`` Gauss points per segment."""
        hp, state = active_state_dict(model)
        law = cls(hp, n_gauss)
        law.load_state_dict(state, strict=True)
        law.set_active()
        law.ensemble_members = model.hp.members
        return law.to(dtype).eval()

    def set_active(self) -> None:
        """Freeze the active members (the ``active`` buffer) into the index the forward pass uses."""
        idx = torch.nonzero(self.active).reshape(-1)
        if idx.numel() == 0:
            raise ValueError("no active ensemble member: run select_top first")
        self.active_index = idx

    def forward(self, positions: Tensor, segments: Tensor, burgers: Tensor, normals: Tensor, cell: Tensor,
                q_segment: Tensor, q_u: Tensor, q_stress: Tensor, temperature_k: Tensor,
                node_flags: Tensor) -> tuple[Tensor, Tensor]:
        """Velocity (n, 3) m/s and sigma (n,) m/s of the n nodes (contract: dislomob.export.contract)."""
        dtype = self.speed_scale.dtype
        m, ng = self.hp.members, self.n_gauss
        n = positions.shape[0]
        src, dst = segments[:, 0], segments[:, 1]
        d = positions[dst] - positions[src]
        d = d - torch.round(d @ inverse_3x3(cell)) @ cell
        unit = d / d.norm(dim=-1, keepdim=True).clamp_min(1e-9)
        frame = frames_from(burgers, normals)

        gp_seg = torch.arange(n, device=positions.device).repeat_interleave(ng)
        gp_u = self.gauss_u.to(dtype).repeat(n)
        stress = interpolate_stress(q_segment, q_u, q_stress, gp_seg, gp_u)
        temp = temperature_k.reshape(1).to(dtype)
        gp_x = gp_invariants(frame[gp_seg], stress, unit[gp_seg], temp.expand(gp_seg.shape[0]))

        ones = torch.full((n,), float(ng), dtype=dtype, device=positions.device)
        node_count = ones.new_zeros(n).index_add(0, src, ones).index_add(0, dst, ones)
        node_x = gp_mean_at_nodes(gp_x, src, dst, node_count)

        h_node = (node_x - self.node_mean) / self.node_std
        h_gp = (gp_x - self.gp_mean) / self.gp_std
        graph = (src, dst, node_count)
        if self.trunk is not None:
            h = self.trunk(h_node, h_gp, *graph)
            h_f, h_b, h_e = h[:, :m], h[:, m:2 * m], h[:, 2 * m:]
        else:
            h_f, h_b, h_e = (trunk(h_node, h_gp, *graph) for trunk in self.trunks)

        tangent = unit.new_zeros(n, 3).index_add(0, src, unit).index_add(0, dst, unit)
        tangent = tangent / tangent.norm(dim=-1, keepdim=True).clamp_min(1e-9)
        axes = motion_axes(tangent, frame)
        node_sigma = gp_mean_at_nodes(stress, src, dst, node_count)
        pk = torch.cross(torch.einsum("nab,nb->na", node_sigma, frame[:, 0]), tangent, dim=-1)
        k = 1 if self.hp.glide_only else 2
        pk_axes = torch.einsum("nc,nkc->nk", pk, axes[:, :k]) / self.force_scale
        force, drag, energy = mobility_head(self, h_f, h_b, h_e, pk_axes, axes[:, :k], frame)
        rate = eq2_factor(1.0, energy, drag, temp)
        v_local = (rate * ANGSTROM_PER_PS_TO_M_PER_S)[..., None] * force  # (n, M, 3) m/s in (b, n, s)
        v = torch.einsum("nij,nmi->mnj", frame, v_local)[self.active_index]
        mean = v.mean(0)
        sigma = ((v - mean) ** 2).mean(0).sum(-1).clamp_min(0.0).sqrt()
        moving = (torch.bitwise_and(node_flags, NODE_PINNED) == 0).to(dtype)
        return mean * moving[:, None], sigma * moving
