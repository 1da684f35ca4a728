"""Resample DXA lines into evenly spaced nodes, segments and Gauss points, keeping the topology.

A line is a closed loop (last node joins the first) or an infinite periodic line (last node joins
the first shifted by the period, a cell row). Lengths are in Angstrom.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dislomob.md.trajectory import Line


class DiscretizationError(ValueError):
    """A line whose topology or periodic closure cannot be resolved; the message says why."""


@dataclass(frozen=True)
class NodeLine:
    """A resampled line: nodes (n,3) Angstrom, Burgers vector (3,) Angstrom, closure.

    ``period`` (3,) Angstrom is the shift from the last node's successor back to the first node's
    image (zero for a closed loop); ``period_axis`` is the cell row it equals (None for a loop).
    """

    nodes: np.ndarray
    burgers: np.ndarray
    period: np.ndarray
    period_axis: int | None

    @property
    def n_nodes(self) -> int:
        return len(self.nodes)

    def segment_ends(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(starts, ends, shifts): segment i joins node i to node i+1; the last wraps with shift = period."""
        starts = self.nodes
        ends = np.roll(self.nodes, -1, axis=0)
        shifts = np.zeros_like(starts)
        shifts[-1] = self.period
        return starts, ends + shifts, shifts


def _period_axis(period: np.ndarray, cell: np.ndarray, tol: float) -> int:
    """The cell row that ``period`` equals up to sign; raise DiscretizationError otherwise."""
    frac = np.linalg.solve(cell.T, period)
    rounded = np.rint(frac)
    if np.max(np.abs(frac - rounded) * np.linalg.norm(cell, axis=1)) > tol:
        raise DiscretizationError(f"periodic closure {np.round(period, 3).tolist()} Angstrom is not a lattice vector of the cell")
    nonzero = np.flatnonzero(rounded)
    if len(nonzero) != 1 or abs(rounded[nonzero[0]]) != 1:
        raise DiscretizationError(
            f"periodic closure {np.round(period, 3).tolist()} Angstrom = {rounded.astype(int).tolist()} cell rows: "
            "only lines that cross one cell row once are supported"
        )
    return int(nonzero[0])


def closed_polyline(line: Line, cell: np.ndarray, tol: float = 0.5) -> tuple[np.ndarray, np.ndarray, int | None]:
    """(points without the repeated end, period (3,), period axis) of a DXA line, Angstrom.

    Closed loops may repeat their first point at the end; infinite lines end at the first point
    shifted by a cell row. An open line (dangling ends, junction) raises DiscretizationError.
    """
    pts = np.asarray(line.points, dtype=np.float64)
    if len(pts) < 2:
        raise DiscretizationError(f"line with {len(pts)} point(s) cannot be resampled")
    if line.is_infinite:
        period = pts[-1] - pts[0]
        axis = _period_axis(period, np.asarray(cell, dtype=np.float64), tol)
        return pts[:-1], period, axis
    if not line.is_loop:
        raise DiscretizationError("open line with dangling ends (junction or surface): not supported")
    if np.linalg.norm(pts[-1] - pts[0]) <= tol:
        pts = pts[:-1]
    if len(pts) < 3:
        raise DiscretizationError(f"closed loop with {len(pts)} distinct points cannot be resampled")
    return pts, np.zeros(3), None


def smooth(points: np.ndarray, period: np.ndarray, passes: int) -> np.ndarray:
    """Binomial (1/4, 1/2, 1/4) smoothing of a closed or periodic polyline, ``passes`` times (Angstrom)."""
    if passes < 0:
        raise ValueError(f"smoothing passes={passes} not allowed: >= 0")
    p = np.asarray(points, dtype=np.float64)
    for _ in range(passes):
        prev = np.roll(p, 1, axis=0)
        prev[0] -= period
        nxt = np.roll(p, -1, axis=0)
        nxt[-1] += period
        p = 0.25 * prev + 0.5 * p + 0.25 * nxt
    return p


def resample(points: np.ndarray, period: np.ndarray, spacing: float, min_nodes: int) -> np.ndarray:
    """Nodes evenly spaced in arc length (spacing Angstrom, at least ``min_nodes``) along a closed polyline.

    The first node is the first input point; the curve closes from the last point to the first + period.
    """
    if not spacing > 0:
        raise ValueError(f"node spacing={spacing} Angstrom not allowed: > 0")
    if min_nodes < 3:
        raise ValueError(f"min_nodes={min_nodes} not allowed: >= 3")
    p = np.asarray(points, dtype=np.float64)
    closed = np.vstack([p, p[:1] + period])
    seg = np.linalg.norm(np.diff(closed, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    total = arc[-1]
    if total <= 0:
        raise DiscretizationError("line of zero length")
    n = max(min_nodes, int(round(total / spacing)))
    s = np.arange(n) * (total / n)
    return np.stack([np.interp(s, arc, closed[:, k]) for k in range(3)], axis=1)


def discretize_line(line: Line, cell: np.ndarray, spacing: float, min_nodes: int, smoothing_passes: int,
                    burgers_sign: float = 1.0) -> NodeLine:
    """Resample one DXA line into a NodeLine (Angstrom); ``burgers_sign`` maps its b to our convention."""
    pts, period, axis = closed_polyline(line, cell)
    pts = smooth(pts, period, smoothing_passes)
    nodes = resample(pts, period, spacing, min_nodes)
    b = burgers_sign * np.asarray(line.spatial_burgers, dtype=np.float64)
    if not np.linalg.norm(b) > 0:
        raise DiscretizationError("line with a zero Burgers vector")
    return NodeLine(nodes, b, period, axis)


@dataclass(frozen=True)
class GaussPoints:
    """Gauss-Legendre points on segments: positions (n_seg*n_gauss,3) Angstrom, segment index, weights (Angstrom)."""

    pos: np.ndarray
    segment: np.ndarray
    weight: np.ndarray


def gauss_points(starts: np.ndarray, ends: np.ndarray, n_gauss: int) -> GaussPoints:
    """``n_gauss`` Gauss-Legendre points per segment, ordered by segment; weights sum to the segment length."""
    if n_gauss < 1:
        raise ValueError(f"n_gauss={n_gauss} not allowed: >= 1")
    xi, w = np.polynomial.legendre.leggauss(n_gauss)
    u = 0.5 * (xi + 1.0)
    d = ends - starts
    pos = starts[:, None, :] + u[None, :, None] * d[:, None, :]
    length = np.linalg.norm(d, axis=1)
    weight = 0.5 * w[None, :] * length[:, None]
    seg = np.repeat(np.arange(len(starts)), n_gauss)
    return GaussPoints(pos.reshape(-1, 3), seg, weight.reshape(-1))
