"""HeteroSAGE layers for G independent networks at once (ensemble members x F/B/E nets).

Hidden features carry a group axis: ``(n_vertices, G, width)``. A layer aggregates Gauss points
into nodes (mean, PyG ``MessagePassing``), concatenates each node's own features, applies a
per-group fully connected layer and a ReLU; then the same from nodes back into Gauss points.
The per-group linear maps are one batched matmul over stacked weights (no Python loop over
groups), and the mean aggregation is one sparse matrix product over all groups' features.
Features are dimensionless (standardized before the first layer).
"""

from __future__ import annotations

import math
import warnings
from typing import Sequence

import torch
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing


class GroupedLinear(nn.Module):
    """G independent affine maps y[:, g] = x[:, g] @ W[g] + b[g]; a 2-D input is shared by all groups."""

    def __init__(self, groups: int, in_features: int, out_features: int, seeds: Sequence[int], bias: bool = True):
        super().__init__()
        if len(seeds) != groups:
            raise ValueError(f"GroupedLinear needs one seed per group: got {len(seeds)} seeds for {groups} groups")
        if in_features < 1 or out_features < 1:
            raise ValueError(f"GroupedLinear widths must be >= 1: in={in_features}, out={out_features}")
        self.groups, self.in_features, self.out_features = groups, in_features, out_features
        bound = 1.0 / math.sqrt(in_features)
        w = torch.empty(groups, in_features, out_features)
        b = torch.empty(groups, out_features)
        for g, seed in enumerate(seeds):
            gen = torch.Generator().manual_seed(int(seed))
            w[g].uniform_(-bound, bound, generator=gen)
            b[g].uniform_(-bound, bound, generator=gen)
        self.weight = nn.Parameter(w)
        self.bias = nn.Parameter(b) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        """(n, in) shared or (n, G, in) per group -> (n, G, out)."""
        if x.dim() == 2:
            flat = self.weight.permute(1, 0, 2).reshape(self.in_features, -1)
            y = (x @ flat).view(x.shape[0], self.groups, self.out_features)
        elif x.dim() == 3 and x.shape[1] == self.groups:
            y = torch.bmm(x.transpose(0, 1), self.weight).transpose(0, 1)
        else:
            raise ValueError(f"GroupedLinear input shape {tuple(x.shape)}: expected (n, {self.in_features}) "
                             f"or (n, {self.groups}, {self.in_features})")
        return y if self.bias is None else y + self.bias

    def extra_repr(self) -> str:
        return f"groups={self.groups}, in={self.in_features}, out={self.out_features}"


def mean_adjacency(edge_index: Tensor, n_src: int, n_dst: int) -> Tensor:
    """Sparse CSR matrix (n_dst, n_src) whose product with source features is the mean over incoming edges."""
    src, dst = edge_index
    order = torch.argsort(dst * n_src + src)
    src, dst = src[order], dst[order]
    count = torch.bincount(dst, minlength=n_dst)
    crow = torch.cat([count.new_zeros(1), torch.cumsum(count, 0)])
    values = 1.0 / count.clamp_min(1).to(torch.float32)[dst]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(crow, src, values, (n_dst, n_src), check_invariants=False)


class MeanAggregation(MessagePassing):
    """Mean of source-vertex features over incoming edges, any trailing shape; sparse fast path."""

    def __init__(self) -> None:
        super().__init__(aggr="mean", node_dim=0)

    def forward(self, x_src: Tensor, edge: Tensor, n_dst: int) -> Tensor:
        """x_src (n_src, ...) -> (n_dst, ...); ``edge`` is an edge_index (2, E) or a :func:`mean_adjacency` matrix."""
        if edge.is_sparse_csr or edge.is_sparse:
            return self.propagate(edge, x=(x_src, None))
        return self.propagate(edge, x=(x_src, None), size=(x_src.shape[0], n_dst))

    def message(self, x_j: Tensor) -> Tensor:
        return x_j

    def message_and_aggregate(self, adj_t: Tensor, x: tuple[Tensor, None]) -> Tensor:
        src = x[0]
        out = torch.sparse.mm(adj_t.to(src.dtype), src.reshape(src.shape[0], -1))
        return out.view((adj_t.shape[0],) + tuple(src.shape[1:]))


class HeteroSAGELayer(nn.Module):
    """gp -> node then node -> gp: mean of neighbours, concatenated with own features, linear, ReLU."""

    def __init__(self, groups: int, node_in: int, gp_in: int, width: int, seeds: Sequence[int], update_gp: bool = True):
        super().__init__()
        rng = [int(s) for s in seeds]
        self.aggr = MeanAggregation()
        self.node_from_gp = GroupedLinear(groups, gp_in, width, [s * 4 + 0 for s in rng])
        self.node_self = GroupedLinear(groups, node_in, width, [s * 4 + 1 for s in rng], bias=False)
        self.update_gp = update_gp
        if update_gp:
            self.gp_from_node = GroupedLinear(groups, width, width, [s * 4 + 2 for s in rng])
            self.gp_self = GroupedLinear(groups, gp_in, width, [s * 4 + 3 for s in rng], bias=False)

    def forward(self, h_node: Tensor, h_gp: Tensor, gp_to_node: Tensor, node_to_gp: Tensor) -> tuple[Tensor, Tensor]:
        """(node, gp) features -> new (node, gp) features (n, G, width); gp unchanged if ``update_gp`` is False."""
        agg = self.aggr(h_gp, gp_to_node, h_node.shape[0])
        h_node = torch.relu(self.node_from_gp(agg) + self.node_self(h_node))
        if self.update_gp:
            agg = self.aggr(h_node, node_to_gp, h_gp.shape[0])
            h_gp = torch.relu(self.gp_from_node(agg) + self.gp_self(h_gp))
        return h_node, h_gp


class HeteroSAGE(nn.Module):
    """A stack of ``depth`` HeteroSAGE layers of ``width`` units for G groups; returns node embeddings (n, G, width)."""

    def __init__(self, groups: int, node_in: int, gp_in: int, width: int, depth: int, seeds: Sequence[int]):
        super().__init__()
        if depth < 1 or width < 1:
            raise ValueError(f"HeteroSAGE needs depth >= 1 and width >= 1: got depth={depth}, width={width}")
        layers = []
        for k in range(depth):
            layers.append(HeteroSAGELayer(groups, node_in if k == 0 else width, gp_in if k == 0 else width, width,
                                          [1000 * s + k for s in seeds], update_gp=k < depth - 1))
        self.layers = nn.ModuleList(layers)

    def forward(self, x_node: Tensor, x_gp: Tensor, gp_to_node: Tensor, node_to_gp: Tensor) -> Tensor:
        h_node, h_gp = x_node, x_gp
        for layer in self.layers:
            h_node, h_gp = layer(h_node, h_gp, gp_to_node, node_to_gp)
        return h_node
