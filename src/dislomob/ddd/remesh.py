"""Remeshing of a DDD network's lines (keep every segment length within bounds) and periodic wrapping.

Lengths in Angstrom. Each closed or periodic line (walked as dislomob.ddd.network_graph walks it) is remeshed on
its own, in its walk sense:

- a segment longer than ``max_spacing`` is split into ceil(L / max) equal pieces (the new nodes lie on it,
  so the line does not change; the pieces keep the segment's Burgers vector and normal);
- while a segment is shorter than ``min_spacing`` and the line has more than ``min_nodes`` nodes, the shortest
  one loses one of its end nodes (the one that gives the shorter merged segment; flagged nodes are kept): its
  two segments become one chord, which keeps the Burgers vector and the normal of the longer of the two.

With ``max_spacing >= 2 min_spacing`` the pieces of a split are never too short and a merged chord longer than
``max_spacing`` splits into two pieces that are not, so every pass removes a violation and the loop ends.
Removing a node of a straight line leaves it unchanged; on a curved line it cuts the arc by at most its sagitta.

The result is a new network: lines in walk order, node k of a line starts its segment k, Burgers vectors in
the walk sense, positions wrapped into the cell (fractional coordinates in [0, 1)), node flags kept (new nodes
0). A quadrature stress of the old segments no longer applies and is dropped.
"""

from __future__ import annotations

import math

import numpy as np

from dislomob.ddd.network import DislocationNetwork, segment_vectors
from dislomob.ddd.network_graph import network_lines

MIN_NODES_PER_LINE = 3


def check_spacing(min_spacing_angstrom: float, max_spacing_angstrom: float, min_nodes: int) -> None:
    """Raise ValueError naming the bad value unless 0 < min, max >= 2 min (finite) and min_nodes >= 3."""
    if not (math.isfinite(min_spacing_angstrom) and min_spacing_angstrom > 0):
        raise ValueError(f"min_spacing_angstrom={min_spacing_angstrom}: allowed a finite value > 0")
    if not (math.isfinite(max_spacing_angstrom) and max_spacing_angstrom >= 2.0 * min_spacing_angstrom):
        raise ValueError(f"max_spacing_angstrom={max_spacing_angstrom}: allowed a finite value >= 2 x "
                         f"min_spacing_angstrom = {2.0 * min_spacing_angstrom}")
    if min_nodes < MIN_NODES_PER_LINE:
        raise ValueError(f"min_nodes={min_nodes}: allowed >= {MIN_NODES_PER_LINE} (a periodic line's segments "
                         "must stay shorter than half its period)")


def wrap_positions(positions_angstrom: np.ndarray, cell_angstrom: np.ndarray | None) -> np.ndarray:
    """Positions (n, 3) Angstrom moved by whole cell vectors into the cell spanned from the origin."""
    if cell_angstrom is None:
        return np.array(positions_angstrom, dtype=np.float64)
    frac = np.linalg.solve(cell_angstrom.T, np.asarray(positions_angstrom, dtype=np.float64).T).T
    return (frac - np.floor(frac)) @ cell_angstrom


class _Line:
    """A line being remeshed: points (unwrapped), closure period, per-segment b and normal, per-node flag."""

    def __init__(self, points: np.ndarray, period: np.ndarray, burgers: np.ndarray, normals: np.ndarray,
                 flags: np.ndarray):
        self.points, self.period, self.burgers, self.normals, self.flags = points, period, burgers, normals, flags

    def vectors(self) -> np.ndarray:
        ends = np.roll(self.points, -1, axis=0)
        ends[-1] = ends[-1] + self.period
        return ends - self.points

    def split(self, k: int, pieces: int) -> None:
        vec = self.vectors()[k]
        new = self.points[k] + (np.arange(1, pieces) / pieces)[:, None] * vec
        at = k + 1
        self.points = np.insert(self.points, at, new, axis=0)
        self.burgers = np.insert(self.burgers, at, np.repeat(self.burgers[k:k + 1], pieces - 1, axis=0), axis=0)
        self.normals = np.insert(self.normals, at, np.repeat(self.normals[k:k + 1], pieces - 1, axis=0), axis=0)
        self.flags = np.insert(self.flags, at, np.zeros(pieces - 1, dtype=self.flags.dtype))

    def remove(self, j: int, lengths: np.ndarray) -> None:
        """Remove node j: segments j - 1 and j become one (data of the longer of the two)."""
        if j == 0:  # rotate so that the node to remove is the last one (its successor is first + period)
            self.points = np.vstack([self.points[1:], self.points[:1] + self.period])
            self.burgers, self.normals = np.roll(self.burgers, -1, axis=0), np.roll(self.normals, -1, axis=0)
            self.flags, lengths = np.roll(self.flags, -1), np.roll(lengths, -1)
            j = len(self.points) - 1
        keep = j - 1 if lengths[j - 1] >= lengths[j] else j
        self.burgers[j - 1], self.normals[j - 1] = self.burgers[keep], self.normals[keep]
        self.points = np.delete(self.points, j, axis=0)
        self.burgers, self.normals = np.delete(self.burgers, j, axis=0), np.delete(self.normals, j, axis=0)
        self.flags = np.delete(self.flags, j)

    def remesh(self, lo: float, hi: float, min_nodes: int) -> None:
        stuck: set[tuple[float, ...]] = set()
        for _ in range(100_000):
            lengths = np.linalg.norm(self.vectors(), axis=1)
            k = int(np.argmax(lengths))
            if lengths[k] > hi:
                self.split(k, int(math.ceil(lengths[k] / hi)))
                continue
            n = len(self.points)
            short = [i for i in np.argsort(lengths) if lengths[i] < lo and tuple(self.points[i]) not in stuck]
            if not short or n <= min_nodes:
                return
            i = int(short[0])
            options = [(lengths[(i - 1) % n], i), (lengths[(i + 1) % n], (i + 1) % n)]
            options = [(length, j) for length, j in sorted(options) if self.flags[j] == 0]
            if not options:
                stuck.add(tuple(self.points[i]))
                continue
            self.remove(options[0][1], lengths)
        raise RuntimeError("remesh did not converge in 100000 passes")


def remesh(network: DislocationNetwork, min_spacing_angstrom: float, max_spacing_angstrom: float,
           min_nodes: int = 4) -> DislocationNetwork:
    """``network`` with every segment length in [min, max] Angstrom where the line's node count allows
    (at least ``min_nodes`` per line), positions wrapped into the cell (module docstring)."""
    check_spacing(min_spacing_angstrom, max_spacing_angstrom, min_nodes)
    vectors = segment_vectors(network)
    flags = network.node_flags if network.node_flags is not None else np.zeros(network.n_nodes, dtype=np.int64)
    pos, seg, bur, nor, flg = [], [], [], [], []
    offset = 0
    for line in network_lines(network):
        sense = np.where(line.flipped, -1.0, 1.0)[:, None]
        d = vectors[line.segments] * sense
        pts = network.positions_angstrom[line.nodes[0]] + np.vstack([np.zeros(3), np.cumsum(d[:-1], axis=0)])
        work = _Line(pts, d.sum(axis=0), network.burgers_angstrom[line.segments] * sense,
                     network.normals[line.segments].copy(), flags[line.nodes].copy())
        work.remesh(min_spacing_angstrom, max_spacing_angstrom, min_nodes)
        n = len(work.points)
        pos.append(work.points)
        seg.append(np.column_stack([offset + np.arange(n), offset + np.roll(np.arange(n), -1)]))
        bur.append(work.burgers)
        nor.append(work.normals)
        flg.append(work.flags)
        offset += n
    return DislocationNetwork(
        positions_angstrom=wrap_positions(np.vstack(pos), network.cell_angstrom), segments=np.vstack(seg),
        burgers_angstrom=np.vstack(bur), normals=np.vstack(nor), temperature_k=network.temperature_k,
        applied_stress_gpa=network.applied_stress_gpa, cell_angstrom=network.cell_angstrom,
        node_flags=np.concatenate(flg) if network.node_flags is not None else None)
