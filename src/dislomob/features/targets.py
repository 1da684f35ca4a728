"""Targets: each node's displacement to the matched line at t + dt, unwrapped through the frames between.

Lengths in Angstrom, times in ps. A line at t + dt matches a line at t when its Burgers vector equals
+-b (DXA may flip the sense) and it is the nearest such line.

A line faster than half the glide cell per dt has a nearest-image displacement that points backwards.
:func:`follow_lines` therefore follows every line through the intermediate DXA frames (0.1 ps apart in
the demo), one nearest-image step at a time, and accumulates each node's path; the t + dt line is then
taken at the periodic image that path reaches (:func:`unwrapped_displacements`). A step is trusted only
when it is at most ``MAX_STEP_FRACTION`` of the cell along every cell row and spans at most
``MAX_GAP_SPACINGS`` frame spacings: another image would then need a line to cross at least 3/4 of the
cell in two frame spacings (150 Angstrom/ps in the 4 nm demo cell, far above the shear-wave speed).
A frame that is missing from the file, cannot be resampled or holds a different number of lines is
bridged when the step across it is still trusted, else the target is rejected with the reason
(:class:`AmbiguousTargetError`). For slow lines the unwrapped image is the nearest one and the
displacements are computed exactly as without tracking (same bytes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dislomob.features.discretize import NodeLine

MAX_STEP_FRACTION = 0.25  # largest trusted nearest-image step per frame, as a fraction of each cell row
MAX_GAP_SPACINGS = 2.0  # largest trusted time between two frames where a line is located, in frame spacings


class MatchError(ValueError):
    """No line at t + dt can be matched to a line at t; the message says which."""


class AmbiguousTargetError(MatchError):
    """A line's displacement over dt cannot be unwrapped without ambiguity; the message says why."""


@dataclass(frozen=True)
class Track:
    """Lines followed from t to t + dt: index of each line's successor among the t + dt lines, and each
    node's accumulated (unwrapped) displacement (n_k, 3) Angstrom."""

    match: list[int]
    shift: list[np.ndarray]


def minimum_image(vectors: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """Vectors (..., 3) Angstrom reduced to their shortest periodic image in the cell (rows)."""
    frac = vectors @ np.linalg.inv(cell)
    return vectors - np.rint(frac) @ cell


def closest_displacements(points: np.ndarray, line: NodeLine, cell: np.ndarray,
                          expected: np.ndarray | None = None) -> np.ndarray:
    """For each point (n,3), the shortest vector (n,3) to the periodic polyline ``line`` (Angstrom).

    Without ``expected`` every segment is taken at its image nearest the point; with ``expected`` (n,3)
    or (3,) Angstrom, at its image nearest ``point + expected`` (the vector is still measured from the point).
    """
    starts, ends, _ = line.segment_ends()
    e = ends - starts
    if expected is None:
        d0 = minimum_image(starts[None] - points[:, None], cell)
    else:
        off = np.broadcast_to(np.asarray(expected, dtype=np.float64), points.shape)[:, None]
        d0 = minimum_image(starts[None] - points[:, None] - off, cell) + off
    ee = np.maximum(np.einsum("sk,sk->s", e, e), 1e-300)
    u = np.clip(-np.einsum("psk,sk->ps", d0, e) / ee, 0.0, 1.0)
    vec = d0 + u[..., None] * e[None]
    dist = np.einsum("psk,psk->ps", vec, vec)
    best = np.argmin(dist, axis=1)
    return vec[np.arange(len(points)), best]


def unwrapped_displacements(points: np.ndarray, line: NodeLine, cell: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Shortest vectors (n,3) Angstrom from ``points`` to the image of ``line`` reached by ``expected`` (n,3).

    When the nearest image already agrees with ``expected`` for every point, this is exactly
    :func:`closest_displacements` without ``expected``.
    """
    near = closest_displacements(points, line, cell)
    if not np.rint((near - expected) @ np.linalg.inv(cell)).any():
        return near
    return closest_displacements(points, line, cell, expected)


def image_shift(nodes: np.ndarray, target_points: np.ndarray, cell: np.ndarray, period_axis: int | None) -> np.ndarray:
    """Lattice vector (3,) Angstrom that moves a line's ``nodes`` (n,3) to the image whose centroid is nearest
    the centroid of ``target_points`` (m,3); shifts along the line's own period (``period_axis``) are left out
    (they map a periodic line onto itself). Exact zeros when the line already lies at that image."""
    n = np.rint((target_points.mean(axis=0) - nodes.mean(axis=0)) @ np.linalg.inv(cell))
    if period_axis is not None:
        n[period_axis] = 0.0
    return n @ cell if n.any() else np.zeros(3)


def match_lines(lines: list[NodeLine], later: list[NodeLine], cell: np.ndarray, btol: float = 0.1) -> list[int]:
    """Index into ``later`` of the line each of ``lines`` became (same +-b, smallest mean distance)."""
    out = []
    for i, ln in enumerate(lines):
        bn = np.linalg.norm(ln.burgers)
        cands = [j for j, lt in enumerate(later)
                 if min(np.linalg.norm(lt.burgers - ln.burgers), np.linalg.norm(lt.burgers + ln.burgers)) <= btol * bn]
        if not cands:
            raise MatchError(f"line {i} (b = {np.round(ln.burgers, 3).tolist()} Angstrom) has no line with +-b at t+dt")
        dist = [np.linalg.norm(closest_displacements(ln.nodes, later[j], cell), axis=1).mean() for j in cands]
        out.append(cands[int(np.argmin(dist))])
    return out


def follow_lines(lines: list[NodeLine], path: list[tuple[float, list[NodeLine] | str]], cell: np.ndarray,
                 t0_ps: float, spacing_ps: float) -> Track:
    """Follow ``lines`` (at ``t0_ps``) through ``path``: (time ps, the frame's lines or why they are unusable)
    for every frame after t0 up to t + dt (last). Raise AmbiguousTargetError when a step is not trusted
    (module docstring) or the last frame is unusable; times missing from ``path`` are gaps."""
    cell = np.asarray(cell, dtype=np.float64)
    inv = np.linalg.inv(cell)
    cur = [ln.nodes.copy() for ln in lines]
    located, skipped = t0_ps, []
    match = list(range(len(lines)))
    for time_ps, frame_lines in path:
        if isinstance(frame_lines, str):
            skipped.append(f"t={time_ps:.6g} ps unusable ({frame_lines})")
            continue
        if len(frame_lines) != len(lines):
            skipped.append(f"t={time_ps:.6g} ps has {len(frame_lines)} line(s) instead of {len(lines)}")
            continue
        gap = time_ps - located
        if gap > MAX_GAP_SPACINGS * spacing_ps * (1 + 1e-6) + 1e-9:
            why = "; ".join(skipped) if skipped else "frames missing from the trajectory"
            raise AmbiguousTargetError(
                f"ambiguous target: no usable frame for {gap:.6g} ps between t={located:.6g} and t={time_ps:.6g} ps "
                f"(at most {MAX_GAP_SPACINGS:g} x the frame spacing {spacing_ps:.6g} ps can be bridged; {why})")
        tracked = [NodeLine(c, ln.burgers, ln.period, ln.period_axis) for c, ln in zip(cur, lines)]
        match = match_lines(tracked, frame_lines, cell)
        if len(set(match)) != len(match):
            raise AmbiguousTargetError(f"ambiguous target: lines {match} at t={time_ps:.6g} ps are not one line each")
        for k, j in enumerate(match):
            step = closest_displacements(cur[k], frame_lines[j], cell)
            frac = float(np.max(np.abs(step @ inv)))
            if frac > MAX_STEP_FRACTION:
                raise AmbiguousTargetError(
                    f"ambiguous target: line {k} steps {frac:.3g} of the cell between t={located:.6g} and "
                    f"t={time_ps:.6g} ps (trusted <= {MAX_STEP_FRACTION:g} per step)")
            cur[k] = cur[k] + step
        located, skipped = time_ps, []
    if skipped:
        raise AmbiguousTargetError(f"ambiguous target: the frame at t + dt is unusable ({'; '.join(skipped)})")
    return Track(match, [c - ln.nodes for c, ln in zip(cur, lines)])
