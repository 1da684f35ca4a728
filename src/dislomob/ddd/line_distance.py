"""Symmetric distance (Angstrom) between two sets of dislocation lines, minimum image in a periodic cell.

A line is a :class:`Polyline`: points unwrapped along the line and the closure ``period`` (a cell row for a
periodic line, zero for a closed loop); segment k joins point k to point k+1, the last one joins the last
point to the first point + period. Polylines come from a :class:`DislocationNetwork` (:func:`network_polylines`)
or from an MD frame's DXA lines (:func:`frame_polylines`).

The distance of line set A from line set B is the arc-length mean over A of the distance of a point of A to
the nearest segment of any line of B (every periodic image of B), computed with points every at most
``sample_spacing_angstrom`` (midpoint rule on each segment); the symmetric distance is the mean of both ways:

    d(A, B) = (<dist(a, B)>_A + <dist(b, A)>_B) / 2.

It is a mean per unit length, so it does not depend on how the lines are meshed (unlike the node-based
training loss of dislomob.model.loss, a root-sum-square over nodes). For a straight periodic line translated
rigidly by delta (|delta| below half the image spacing) it is the component of delta normal to the line.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product

import numpy as np

from dislomob.ddd.network import DislocationNetwork, minimum_image, segment_vectors
from dislomob.ddd.network_graph import network_lines
from dislomob.features.discretize import closed_polyline
from dislomob.md.trajectory import Frame

SEARCH_CHUNK = 1 << 18
_NEIGHBOUR_IMAGES = np.array(list(product((-1, 0, 1), repeat=3)), dtype=np.float64)


@dataclass(frozen=True)
class Polyline:
    """One line: points (n, 3) Angstrom unwrapped along the line and the closure ``period`` (3,) Angstrom."""

    points: np.ndarray
    period: np.ndarray

    def segments(self) -> tuple[np.ndarray, np.ndarray]:
        """(starts (n, 3), vectors (n, 3)) Angstrom of the line's segments, the last one closing the line."""
        ends = np.roll(self.points, -1, axis=0)
        ends[-1] = ends[-1] + self.period
        return self.points, ends - self.points

    def closed_points(self) -> np.ndarray:
        """Points (n + 1, 3) Angstrom with the closing point (first + period) appended: what a plot draws."""
        return np.vstack([self.points, self.points[:1] + self.period])


def network_polylines(network: DislocationNetwork) -> list[Polyline]:
    """The closed and periodic lines of ``network`` (walked as dislomob.ddd.network_graph walks them)."""
    vectors = segment_vectors(network)
    out = []
    for line in network_lines(network):
        d = vectors[line.segments] * np.where(line.flipped, -1.0, 1.0)[:, None]
        pts = network.positions_angstrom[line.nodes[0]] + np.vstack([np.zeros(3), np.cumsum(d[:-1], axis=0)])
        out.append(Polyline(pts, d.sum(axis=0)))
    return out


def frame_polylines(frame: Frame) -> list[Polyline]:
    """The DXA lines of an MD frame as polylines (raises DiscretizationError for an open line)."""
    out = []
    for line in frame.lines:
        pts, period, _ = closed_polyline(line, frame.cell)
        out.append(Polyline(np.asarray(pts, dtype=np.float64), np.asarray(period, dtype=np.float64)))
    return out


def centred(line: Polyline, cell: np.ndarray | None) -> Polyline:
    """``line`` moved by a whole lattice vector so that its centroid lies in the cell spanned from the origin."""
    if cell is None:
        return line
    shift = np.floor(np.linalg.solve(np.asarray(cell).T, line.points.mean(axis=0))) @ cell
    return Polyline(line.points - shift, line.period)


def _samples(lines: list[Polyline], spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """Midpoint-rule points (p, 3) Angstrom along ``lines`` and their arc-length weights (p,) Angstrom."""
    pts, wts = [], []
    for line in lines:
        start, vec = line.segments()
        length = np.linalg.norm(vec, axis=1)
        k = np.maximum(1, np.ceil(length / spacing).astype(int))
        seg = np.repeat(np.arange(len(start)), k)
        local = np.concatenate([(np.arange(n) + 0.5) / n for n in k])
        pts.append(start[seg] + local[:, None] * vec[seg])
        wts.append((length / k)[seg])
    return np.vstack(pts), np.concatenate(wts)


def point_to_lines(points: np.ndarray, lines: list[Polyline], cell: np.ndarray | None) -> np.ndarray:
    """Distance (p,) Angstrom of each point to the nearest segment of ``lines`` over their periodic images.

    With a cell, each (point, segment) pair starts from the minimum image of point - segment start and also
    tries the 26 neighbouring images, so the result is exact for segments shorter than the cell."""
    starts, vecs = zip(*(ln.segments() for ln in lines))
    start, vec = np.vstack(starts), np.vstack(vecs)
    ee = np.maximum(np.einsum("sk,sk->s", vec, vec), 1e-24)
    shifts = np.zeros((1, 3)) if cell is None else _NEIGHBOUR_IMAGES @ np.asarray(cell, dtype=np.float64)
    out = np.empty(len(points))
    chunk = max(1, SEARCH_CHUNK // max(1, len(start) * len(shifts)))
    for i in range(0, len(points), chunk):
        p = points[i:i + chunk]
        rel = p[:, None, :] - start[None, :, :]
        rel = minimum_image(rel.reshape(-1, 3), cell).reshape(rel.shape)
        rel = rel[:, :, None, :] + shifts[None, None, :, :]
        u = np.clip(np.einsum("psik,sk->psi", rel, vec) / ee[None, :, None], 0.0, 1.0)
        foot = rel - u[..., None] * vec[None, :, None, :]
        out[i:i + chunk] = np.sqrt(np.einsum("psik,psik->psi", foot, foot).reshape(len(p), -1).min(axis=1))
    return out


def one_way_distance(a: list[Polyline], b: list[Polyline], cell: np.ndarray | None,
                     sample_spacing_angstrom: float = 1.0) -> float:
    """Arc-length mean (Angstrom) over the lines ``a`` of the distance to the nearest segment of ``b``."""
    pts, w = _samples(a, sample_spacing_angstrom)
    return float(np.sum(w * point_to_lines(pts, b, cell)) / np.sum(w))


def line_distance(a: list[Polyline], b: list[Polyline], cell: np.ndarray | None,
                  sample_spacing_angstrom: float = 1.0) -> float:
    """Symmetric distance (Angstrom) between line sets ``a`` and ``b`` in ``cell`` (module docstring)."""
    if not a or not b:
        raise ValueError(f"line_distance needs lines on both sides (got {len(a)} and {len(b)})")
    if not (np.isfinite(sample_spacing_angstrom) and sample_spacing_angstrom > 0):
        raise ValueError(f"sample_spacing_angstrom={sample_spacing_angstrom}: allowed a finite value > 0")
    return 0.5 * (one_way_distance(a, b, cell, sample_spacing_angstrom)
                  + one_way_distance(b, a, cell, sample_spacing_angstrom))


def translated(line: Polyline, shift_angstrom: np.ndarray) -> Polyline:
    """``line`` moved rigidly by ``shift_angstrom`` (3,) Angstrom."""
    return Polyline(line.points + np.asarray(shift_angstrom, dtype=np.float64), line.period)


def along_line_images(line: Polyline, reps: int = 1) -> Polyline:
    """A periodic line unrolled over 2 reps + 1 periods (its images along itself only); a loop unchanged."""
    if not np.any(line.period):
        return line
    pts = np.vstack([line.points + k * line.period for k in range(-reps, reps + 1)])
    return Polyline(pts, (2 * reps + 1) * line.period)


MAX_REPS = 1000


def _reps(line: Polyline, others: np.ndarray) -> int:
    """Periods each way that unroll ``line`` along itself past every point of ``others`` by a period."""
    length = float(np.linalg.norm(line.period))
    if length < 1e-6:  # a closed loop (its period is zero up to round-off)
        return 0
    t = line.period / length
    own, far = line.points @ t, others @ t
    beyond = max(own.min() - far.min(), far.max() - own.max(), 0.0)
    reps = int(np.ceil(beyond / length)) + 1
    if reps > MAX_REPS:
        raise ValueError(f"a line of period {np.round(line.period, 3).tolist()} Angstrom would need {reps} images "
                         f"each way to reach the other lines (allowed <= {MAX_REPS}): not the same line any more")
    return reps


def unwrapped_line_distance(a: list[Polyline], b: list[Polyline], sample_spacing_angstrom: float = 1.0) -> float:
    """Symmetric distance (Angstrom) of line sets given at the images they really reached (unwrapped in time):
    no images across the lines, only each periodic line's images along itself; so a line that moved by more
    than half the cell is as far as it really is (the minimum image of :func:`line_distance` would fold it)."""
    if not a or not b:
        raise ValueError(f"unwrapped_line_distance needs lines on both sides (got {len(a)} and {len(b)})")
    if not (np.isfinite(sample_spacing_angstrom) and sample_spacing_angstrom > 0):
        raise ValueError(f"sample_spacing_angstrom={sample_spacing_angstrom}: allowed a finite value > 0")
    a_pts, b_pts = np.vstack([ln.points for ln in a]), np.vstack([ln.points for ln in b])
    a_img = [along_line_images(ln, _reps(ln, b_pts)) for ln in a]
    b_img = [along_line_images(ln, _reps(ln, a_pts)) for ln in b]
    return 0.5 * (one_way_distance(a, b_img, None, sample_spacing_angstrom)
                  + one_way_distance(b, a_img, None, sample_spacing_angstrom))
