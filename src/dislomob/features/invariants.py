"""Model inputs that the crystal's symmetries leave unchanged, computed from a graph's raw geometry and stress.

Every feature is expressed in the line's frame (b_hat, n_hat, s_hat) and is invariant under
- rigid rotations and translations of the whole configuration (frame components only);
- (xi, b) -> (-xi, -b), the same dislocation described the other way round: b_hat and s_hat flip, so
  sigma_bn, sigma_ns and the tangent's n component flip and enter only as |.|, squares or products;
- the 2-fold axis along a {110} glide-plane normal, acting on the stress alone (sigma_bn and sigma_ns
  flip with the glide direction: the Peach-Koehler force carries that sign, the features must not);
- the lattice inversion, which reverses the line (xi -> -xi, tangent components flip): tangent
  components enter as squares and the product t_b * t_s only.
No feature depends on the node spacing (no segment lengths, no turn angles), so a straight line's
features are the same however it is meshed. Stresses in GPa, temperature in K; the rest dimensionless.
"""

from __future__ import annotations

import torch
from torch import Tensor

from dislomob import graph_schema as S

GP_FEATURE_NAMES = (
    "tau_abs_gpa", "sigma_ns_abs_gpa", "sigma_bn_ns_gpa2", "sigma_bb_gpa", "sigma_nn_gpa", "sigma_ss_gpa",
    "sigma_bs_gpa", "cos2_character", "cos_sin_character", "tangent_n2", "temperature_k",
)
NODE_FEATURE_NAMES = tuple(f"mean_{n}" for n in GP_FEATURE_NAMES)


def gp_invariants(frames: Tensor, stress_gpa: Tensor, tangents: Tensor, temperature_k: Tensor) -> Tensor:
    """(n, len(GP_FEATURE_NAMES)) features from frames (n,3,3) rows (b,n,s), Cartesian stress (n,3,3) GPa,
    unit tangents (n,3) and temperatures (n,) K."""
    loc = torch.einsum("nia,nab,njb->nij", frames, stress_gpa, frames)
    t = torch.einsum("nia,na->ni", frames, tangents)
    s_bn, s_ns = loc[:, 0, 1], loc[:, 1, 2]
    cols = [s_bn.abs(), s_ns.abs(), s_bn * s_ns, loc[:, 0, 0], loc[:, 1, 1], loc[:, 2, 2], loc[:, 0, 2],
            t[:, 0] ** 2, t[:, 0] * t[:, 2], t[:, 1] ** 2, temperature_k]
    return torch.stack(cols, dim=1)


def segment_tangents(batch, dtype: torch.dtype | None = None) -> Tensor:
    """Unit tangent (n_seg, 3) of every ``(node, seg, node)`` segment of a graph_schema (batched) graph."""
    from dislomob.model.loss import batch_lines

    lines, _, cell = batch_lines(batch)
    pos = batch[S.NODE].pos.to(dtype or batch[S.NODE].pos.dtype)
    _, vec = lines.segment_vectors(pos, cell.to(pos.dtype))
    return vec / vec.norm(dim=-1, keepdim=True).clamp_min(1e-9)


def graph_features(batch, dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor]:
    """(node features (n_node, F), GP features (n_gp, F)) of a graph_schema (batched) graph.

    A GP takes the frame, tangent and temperature of its segment (segment i starts at node i); a node
    takes the mean over the GPs of its adjacent segments.
    """
    node, gp = batch[S.NODE], batch[S.GP]
    n = node.pos.shape[0]
    src_seg = batch[S.NODE_SEG].edge_index[0]
    if not torch.equal(src_seg, torch.arange(n, device=src_seg.device)):
        raise ValueError("graph_features needs segment i to start at node i (closed or periodic lines)")
    seg = gp.segment.long()  # per graph; PyG batching does not offset it
    gp_graph = getattr(gp, "batch", None)
    if gp_graph is not None:
        seg = seg + batch[S.NODE].ptr[:-1][gp_graph]
    node_of_seg = seg
    tangents = segment_tangents(batch, dtype)[seg]
    gp_x = gp_invariants(node.frame.to(dtype)[node_of_seg], gp.stress_gpa.to(dtype), tangents,
                         node.temperature_k.to(dtype)[node_of_seg])
    src, dst = batch[S.GP_TO_NODE].edge_index
    total = gp_x.new_zeros(n, gp_x.shape[1]).index_add(0, dst, gp_x[src])
    count = torch.bincount(dst, minlength=n).clamp_min(1).to(dtype)
    return total / count[:, None], gp_x
