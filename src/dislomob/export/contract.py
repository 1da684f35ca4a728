"""The plain-tensor contract of the exported mobility law, and the helper that puts a network into it.

Canonical layout (docs/export_contract.md): n nodes, n segments, segment g runs from node g to node
``segments[g, 1]`` (every node starts exactly one segment: closed loops and periodic lines), each segment
carries its Burgers vector in that sense and its slip-plane normal; stress is given at Q quadrature points as
(segment, u in [0, 1] from the segment's start to its end, 3x3 stress). Real tensors float64, index and flag
tensors int64. Lengths Angstrom, stress GPa (total: dislocations + applied), temperature K; out m/s.

:func:`export_inputs` turns any network the Python law takes into that layout with the same walk, checks and
errors as dislomob.ddd.network_graph. A network without quadrature stress gets the law's own stress at its
Gauss points (the internal-stress path) as quadrature points, so the exported law reproduces that path too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from dislomob.config import Config
from dislomob.ddd.network import DislocationNetwork, minimum_image, segment_vectors
from dislomob.ddd.network_graph import walk_network

INPUT_NAMES = ("positions", "segments", "burgers", "normals", "cell", "q_segment", "q_u", "q_stress",
               "temperature_k", "node_flags")
OUTPUT_NAMES = ("velocity", "sigma")
U_CLIP = (-1.0, 2.0)


@dataclass(frozen=True)
class ExportInputs:
    """One network in the contract layout (arrays in forward order) and ``node_of``: canonical node g is network
    node ``node_of[g]``. Angstrom, GPa, K; float64 / int64."""

    positions: np.ndarray
    segments: np.ndarray
    burgers: np.ndarray
    normals: np.ndarray
    cell: np.ndarray
    q_segment: np.ndarray
    q_u: np.ndarray
    q_stress: np.ndarray
    temperature_k: np.ndarray
    node_flags: np.ndarray
    node_of: np.ndarray

    @property
    def n_nodes(self) -> int:
        """Number of nodes (= segments)."""
        return len(self.positions)

    def tensors(self) -> tuple[torch.Tensor, ...]:
        """The inputs as torch tensors in the order of :data:`INPUT_NAMES`."""
        return tuple(torch.as_tensor(np.ascontiguousarray(getattr(self, k))) for k in INPUT_NAMES)

    def to_network_order(self, per_node: np.ndarray) -> np.ndarray:
        """Rows of a canonical per-node array (n, ...) rearranged into the network's node order."""
        out = np.zeros_like(per_node)
        out[self.node_of] = per_node
        return out


def quadrature_u(network: DislocationNetwork) -> np.ndarray:
    """Parameter u (q,) of the network's quadrature points on their stored segments (0 at the start node, 1 at
    the end; minimum image), clipped to [-1, 2] as dislomob.ddd.network_graph.quadrature_stress does."""
    seg = network.quad_segments
    start = network.positions_angstrom[network.segments[seg, 0]]
    vec = segment_vectors(network)[seg]
    rel = minimum_image(network.quad_positions_angstrom - start, network.cell_angstrom)
    return np.clip(np.einsum("qk,qk->q", rel, vec) / np.einsum("qk,qk->q", vec, vec), *U_CLIP)


def export_inputs(network: DislocationNetwork, cfg: Config | None = None) -> ExportInputs:
    """``network`` in the contract layout (walk, checks and errors of dislomob.ddd.network_graph; see module doc)."""
    cfg = cfg if cfg is not None else Config()
    w = walk_network(network, cfg)
    n = len(w.node_of)
    sign = np.where(w.flipped, -1.0, 1.0)[:, None]
    if network.has_quadrature_stress:
        canonical = np.empty(network.n_segments, dtype=np.int64)
        canonical[w.segment_of] = np.arange(n)
        q_segment = canonical[network.quad_segments]
        u = quadrature_u(network)
        q_u = np.where(w.flipped[q_segment], 1.0 - u, u)
        q_stress = np.array(network.quad_stress_gpa)
    else:
        k = cfg.features.n_gauss
        q_segment = w.gp_segment
        q_u = np.tile(0.5 * (np.polynomial.legendre.leggauss(k)[0] + 1.0), n)
        q_stress = w.gp_stress
    flags = network.node_flags[w.node_of] if network.node_flags is not None else np.zeros(n, dtype=np.int64)
    return ExportInputs(
        positions=np.array(network.positions_angstrom[w.node_of]),
        segments=np.stack([np.arange(n), w.dst], axis=1).astype(np.int64),
        burgers=network.burgers_angstrom[w.segment_of] * sign,
        normals=np.array(network.normals[w.segment_of]),
        cell=np.array(w.cell, dtype=np.float64).reshape(3, 3),
        q_segment=q_segment.astype(np.int64), q_u=q_u.astype(np.float64), q_stress=q_stress.astype(np.float64),
        temperature_k=np.array([network.temperature_k]), node_flags=flags.astype(np.int64),
        node_of=np.asarray(w.node_of, dtype=np.int64))
