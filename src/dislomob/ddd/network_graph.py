"""A DDD network (dislomob.ddd.network) as the project's heterogeneous graph (dislomob.graph_schema).

The graph is what featurize makes of an MD frame, so the trained law sees a DDD network the way it saw its
training data. Lengths in Angstrom, stress in GPa, temperature in K, time in ps.

Topology. The model takes closed loops and periodic lines in which segment g starts at node g, so every node
must have exactly two arms: a node with three or more (a junction) or one (a line end on a surface) raises
:class:`UnsupportedNetworkError` naming the node. Each line is walked head to tail from the lowest-numbered
segment not yet visited; a segment stored against the walk is described as (-xi, -b), which is the same
dislocation (its normal is kept). A periodic line must close after one period along one cell row (as in the
MD cells); other windings raise, naming the line's first nodes.

Positions. A line is unwrapped from its first node with the minimum-image segment vectors and then moved by a
whole lattice vector so that its centroid lies in the cell spanned by the cell rows from the origin: the
truncated image sums are then centred on the lines, wherever the DDD code keeps its positions.

Frames. Graph node g carries the frame (b_hat, n_hat, s_hat) = ``line_frame(b, n)`` of the segment that leaves
it (the walk's sense); the Gauss points of that segment use the same frame. A Burgers vector out of its
segment's slip plane raises, naming the segment.

Stress at the graph's Gauss points (``features.n_gauss`` Gauss-Legendre points per segment), GPa:
- without quadrature stress: the non-singular stress of the network itself (``segment_stress``, Cai et al.
  2006; elastic constants and core width ``features.core_width_b`` times the mean |b| from the config) plus
  the applied stress; with a cell the lines' periodic images and straight tails are summed by
  ``network_stress`` with ``features.images`` / ``features.line_images`` and the cell average of the
  dislocations' stress is removed when ``features.remove_mean_stress`` (exactly as featurize does);
- with the DDD code's quadrature stress (any number of points per segment, at least one): each point is
  projected on its segment, u = (x - start) . d / |d|^2 (minimum image; u = 0 at the stored start node and 1 at
  the end), and each Gauss point takes the stress linearly interpolated in u between the two nearest points
  of its segment, the first or last point's stress beyond them (one point: its stress on the whole segment).
  The quadrature stress is the total stress: the applied stress is not added again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch_geometric.data import HeteroData

from dislomob.config import Config
from dislomob.ddd.network import BURGERS_RESIDUAL_REL_TOL, DislocationNetwork, minimum_image, segment_vectors
from dislomob.errors import DislomobError
from dislomob.features.discretize import NodeLine, gauss_points
from dislomob.features.featurize import stress_settings
from dislomob.features.graphs import Snapshot, StressSettings, to_heterodata, to_record
from dislomob.features.local_frame import FrameRowError, line_frames
from dislomob.features.periodic import mean_image_stress, network_stress
from dislomob.features.stress import segment_stress

STRESS_INTERNAL = "internal"
STRESS_QUADRATURE = "quadrature"
OPEN_CELL_MARGIN_ANGSTROM = 100.0


class UnsupportedNetworkError(DislomobError, ValueError):
    """A valid network the mobility law cannot take (junction, line end, winding line); names the node or segment."""


@dataclass(frozen=True)
class Line:
    """One closed or periodic line of a network: its nodes and segments in walk order.

    ``nodes[k]`` (network node index) starts ``segments[k]`` (network segment index); ``flipped[k]`` says the
    segment is stored from its end to its start (the walk describes it as (-xi, -b)).
    """

    nodes: np.ndarray
    segments: np.ndarray
    flipped: np.ndarray


@dataclass(frozen=True)
class NetworkGraph:
    """A network's graph and the map back: graph node g is network node ``node_of[g]`` and starts graph segment
    g, which is network segment ``segment_of[g]`` (stored the other way round where ``flipped[g]``);
    ``stress_source`` is "internal" or "quadrature"."""

    graph: HeteroData
    node_of: np.ndarray
    segment_of: np.ndarray
    flipped: np.ndarray
    stress_source: str


def _arms(network: DislocationNetwork) -> np.ndarray:
    """(n, 2) the two segments at every node; a node with another number of arms raises."""
    ends = network.segments.ravel()
    count = np.bincount(ends, minlength=network.n_nodes)
    bad = np.flatnonzero(count != 2)
    if bad.size:
        k, c = int(bad[0]), int(count[bad[0]])
        touching = np.flatnonzero((network.segments == k).any(axis=1)).tolist()
        what = "a junction" if c > 2 else "a line end (surface node)"
        raise UnsupportedNetworkError(
            f"node {k} has {c} arm(s) (segments {touching}): {what}; the mobility law takes closed loops and "
            f"periodic lines only, every node with exactly 2 arms ({bad.size} node(s) with another number)")
    return (np.argsort(ends, kind="stable") // 2).reshape(-1, 2)


def network_lines(network: DislocationNetwork) -> list[Line]:
    """The network's closed and periodic lines, each walked head to tail (see the module docstring)."""
    arms, seg = _arms(network), network.segments
    used = np.zeros(network.n_segments, dtype=bool)
    lines = []
    for first in range(network.n_segments):
        if used[first]:
            continue
        nodes, segs, flips = [], [], []
        k, node, flip = first, int(seg[first, 0]), False
        start = node
        while True:
            used[k] = True
            nodes.append(node)
            segs.append(k)
            flips.append(flip)
            node = int(seg[k, 0] if flip else seg[k, 1])
            if node == start:
                break
            a, b = arms[node]
            k = int(b if a == k else a)
            flip = bool(seg[k, 0] != node)
        lines.append(Line(np.array(nodes), np.array(segs), np.array(flips)))
    return lines


def _line_burgers(network: DislocationNetwork, line: Line) -> np.ndarray:
    """The one Burgers vector (3,) Angstrom of a line in its walk sense; raises where it changes along the line."""
    b = network.burgers_angstrom[line.segments] * np.where(line.flipped, -1.0, 1.0)[:, None]
    dev = np.linalg.norm(b - b[0], axis=1)
    bad = np.flatnonzero(dev > BURGERS_RESIDUAL_REL_TOL * np.linalg.norm(b[0]))
    if bad.size:
        k = int(bad[0])
        raise UnsupportedNetworkError(
            f"the Burgers vector changes along a line at node {int(line.nodes[k])} (segment {int(line.segments[k])}): "
            "the mobility law takes lines of one Burgers vector")
    return b[0]


def node_line(network: DislocationNetwork, line: Line, vectors: np.ndarray) -> NodeLine:
    """A network line as a :class:`NodeLine` (unwrapped nodes, Angstrom), centred in the cell when there is one."""
    d = vectors[line.segments] * np.where(line.flipped, -1.0, 1.0)[:, None]
    pts = network.positions_angstrom[line.nodes[0]] + np.vstack([np.zeros(3), np.cumsum(d[:-1], axis=0)])
    burgers = _line_burgers(network, line)
    cell = network.cell_angstrom
    if cell is None:
        return NodeLine(pts, burgers, np.zeros(3), None)
    rows = np.rint(np.linalg.solve(cell.T, d.sum(axis=0)))
    nonzero = np.flatnonzero(rows)
    if nonzero.size > 1 or (nonzero.size == 1 and abs(rows[nonzero[0]]) != 1):
        raise UnsupportedNetworkError(
            f"the line through nodes {line.nodes[:4].tolist()}... closes after {rows.astype(int).tolist()} cell rows: "
            "the mobility law takes periodic lines that cross one cell row once")
    pts = pts - np.floor(np.linalg.solve(cell.T, pts.mean(axis=0))) @ cell
    if nonzero.size == 0:
        return NodeLine(pts, burgers, np.zeros(3), None)
    return NodeLine(pts, burgers, rows @ cell, int(nonzero[0]))


def node_frames(network: DislocationNetwork, line: Line, burgers: np.ndarray) -> np.ndarray:
    """Frames (k, 3, 3) rows (b_hat, n_hat, s_hat) of a line's segments (walk-sense b, stored normal)."""
    normals = network.normals[line.segments]
    try:
        return line_frames(burgers, normals)
    except FrameRowError as err:
        raise UnsupportedNetworkError(f"segment {int(line.segments[err.row])}: {err.reason}") from None


def internal_stress(points: np.ndarray, lines: list[NodeLine], network: DislocationNetwork,
                    settings: StressSettings) -> np.ndarray:
    """Stress (p, 3, 3) GPa at ``points`` (Angstrom): the network's own non-singular stress plus the applied stress."""
    mu, nu, a = settings.mu_gpa, settings.nu, settings.core_width_angstrom
    cell = network.cell_angstrom
    if cell is None:
        parts = [ln.segment_ends() for ln in lines]
        starts, ends = np.vstack([p[0] for p in parts]), np.vstack([p[1] for p in parts])
        burgers = np.vstack([np.tile(ln.burgers, (ln.n_nodes, 1)) for ln in lines])
        sigma = segment_stress(points, starts, ends, burgers, mu, nu, a, settings.max_pairs)
    else:
        sigma = network_stress(points, lines, cell, mu, nu, a, settings.images, settings.line_images,
                               settings.max_pairs)
        if settings.remove_mean:
            sigma -= mean_image_stress(lines, cell, mu, nu, a, settings.images, settings.line_images,
                                       settings.max_pairs)[None]
    return sigma + network.applied_stress_gpa[None]


def quadrature_stress(network: DislocationNetwork, segment: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Stress (p, 3, 3) GPa at points at parameter ``u`` (0 at the stored start, 1 at the end) of network segments
    ``segment``, interpolated linearly in u from the network's quadrature stress (see the module docstring)."""
    q_seg = network.quad_segments
    missing = np.setdiff1d(np.unique(segment), q_seg)
    if missing.size:
        raise UnsupportedNetworkError(f"segment {int(missing[0])} has no quadrature point ({missing.size} segment(s) "
                                      "without one): give at least one per segment, or no quadrature stress at all")
    start = network.positions_angstrom[network.segments[q_seg, 0]]
    vec = segment_vectors(network)[q_seg]
    rel = minimum_image(network.quad_positions_angstrom - start, network.cell_angstrom)
    q_u = np.clip(np.einsum("qk,qk->q", rel, vec) / np.einsum("qk,qk->q", vec, vec), -1.0, 2.0)
    order = np.lexsort((q_u, q_seg))
    q_seg, q_u, q_stress = q_seg[order], q_u[order], network.quad_stress_gpa[order]
    key = q_seg * 4.0 + q_u
    right = np.searchsorted(key, segment * 4.0 + u, side="right")
    left = right - 1
    n = len(key)
    left_ok = (left >= 0) & (q_seg[np.clip(left, 0, n - 1)] == segment)
    right_ok = (right < n) & (q_seg[np.clip(right, 0, n - 1)] == segment)
    lo = np.where(left_ok, left, right)
    hi = np.where(right_ok, right, left)
    du = q_u[hi] - q_u[lo]
    w = np.where(du > 0, (u - q_u[lo]) / np.where(du > 0, du, 1.0), 0.0)
    w = np.clip(w, 0.0, 1.0)[:, None, None]
    return (1.0 - w) * q_stress[lo] + w * q_stress[hi]


def _graph_cell(network: DislocationNetwork, node_pos: np.ndarray) -> np.ndarray:
    """The network's cell, or without one a box that holds the network with a margin (never used for images)."""
    if network.cell_angstrom is not None:
        return np.array(network.cell_angstrom)
    extent = node_pos.max(axis=0) - node_pos.min(axis=0)
    return np.diag(2.0 * extent + OPEN_CELL_MARGIN_ANGSTROM)


@dataclass(frozen=True)
class WalkedNetwork:
    """A network walked into graph order, with the stress at its Gauss points: everything of the graph but the graph.

    Graph node g is network node ``node_of[g]``, starts segment g (network segment ``segment_of[g]``, stored the
    other way round where ``flipped[g]``) that ends at graph node ``dst[g]``; ``starts``/``ends``/``shift`` are the
    unwrapped segment ends and periodic shifts (Angstrom), ``gp_pos``/``gp_segment``/``gp_stress`` the Gauss points
    (Angstrom, graph segment, GPa total stress)."""

    lines: list[NodeLine]
    frames: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    shift: np.ndarray
    dst: np.ndarray
    node_of: np.ndarray
    segment_of: np.ndarray
    flipped: np.ndarray
    gp_pos: np.ndarray
    gp_segment: np.ndarray
    gp_stress: np.ndarray
    cell: np.ndarray
    stress_source: str


def walk_network(network: DislocationNetwork, cfg: Config) -> WalkedNetwork:
    """Walk ``network`` into graph order and evaluate its stress at the Gauss points (GPa; see the module doc)."""
    walked = network_lines(network)
    vectors = segment_vectors(network)
    lines = [node_line(network, ln, vectors) for ln in walked]
    frames = np.vstack([node_frames(network, w, nl.burgers) for w, nl in zip(walked, lines)])
    parts = [nl.segment_ends() for nl in lines]
    starts, ends, shift = (np.vstack([p[i] for p in parts]) for i in range(3))
    sizes = np.array([nl.n_nodes for nl in lines])
    offset = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    dst = np.concatenate([o + np.roll(np.arange(s), -1) for o, s in zip(offset, sizes)])
    node_of = np.concatenate([w.nodes for w in walked])
    segment_of = np.concatenate([w.segments for w in walked])
    flipped = np.concatenate([w.flipped for w in walked])
    gps = gauss_points(starts, ends, cfg.features.n_gauss)
    if network.has_quadrature_stress:
        d = ends - starts
        along = np.einsum("pk,pk->p", gps.pos - starts[gps.segment], d[gps.segment])
        u = along / np.einsum("pk,pk->p", d, d)[gps.segment]
        u = np.where(flipped[gps.segment], 1.0 - u, u)
        stress, source = quadrature_stress(network, segment_of[gps.segment], u), STRESS_QUADRATURE
    else:
        b_len = float(np.linalg.norm(network.burgers_angstrom, axis=1).mean())
        stress, source = internal_stress(gps.pos, lines, network, stress_settings(cfg, b_len)), STRESS_INTERNAL
    return WalkedNetwork(lines, frames, starts, ends, shift, dst, node_of, segment_of, flipped, gps.pos,
                         gps.segment, stress, _graph_cell(network, starts), source)


def network_graph(network: DislocationNetwork, cfg: Config, dtype: torch.dtype = torch.float64) -> NetworkGraph:
    """The graph_schema graph of ``network`` (real numbers in ``dtype``) and its map back to the network's nodes."""
    w = walk_network(network, cfg)
    f = cfg.features
    src = np.arange(len(w.node_of))
    snap = Snapshot(w.lines, w.starts, w.frames, src, w.dst, w.shift, w.gp_pos, w.gp_segment, w.gp_stress)
    info = {"dt_ps": f.dt_ps, "temperature_k": network.temperature_k, "angle_deg": float("nan"),
            "stress_gpa": float("nan"), "traj_id": "ddd_network", "frame_index": 0, "time_ps": 0.0}
    graph = to_heterodata(to_record(snap, np.zeros_like(w.starts), w.lines, w.cell, info, dtype))
    graph.pbc = torch.full((1, 3), network.cell_angstrom is not None, dtype=torch.bool)
    return NetworkGraph(graph, w.node_of, w.segment_of, w.flipped, w.stress_source)
