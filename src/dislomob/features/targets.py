"""Targets: each node's displacement to the matched line at t + dt, with minimum-image distances.

Lengths in Angstrom. A line at t + dt matches a line at t when its Burgers vector equals +-b
(DXA may flip the sense) and it is the nearest such line.
"""

from __future__ import annotations

import numpy as np

from dislomob.features.discretize import NodeLine


class MatchError(ValueError):
    """No line at t + dt can be matched to a line at t; the message says which."""


def minimum_image(vectors: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """Vectors (..., 3) Angstrom reduced to their shortest periodic image in the cell (rows)."""
    frac = vectors @ np.linalg.inv(cell)
    return vectors - np.rint(frac) @ cell


def closest_displacements(points: np.ndarray, line: NodeLine, cell: np.ndarray) -> np.ndarray:
    """For each point (n,3), the shortest vector (n,3) to the periodic polyline ``line`` (Angstrom)."""
    starts, ends, _ = line.segment_ends()
    e = ends - starts
    d0 = minimum_image(starts[None] - points[:, None], cell)
    ee = np.maximum(np.einsum("sk,sk->s", e, e), 1e-300)
    u = np.clip(-np.einsum("psk,sk->ps", d0, e) / ee, 0.0, 1.0)
    vec = d0 + u[..., None] * e[None]
    dist = np.einsum("psk,psk->ps", vec, vec)
    best = np.argmin(dist, axis=1)
    return vec[np.arange(len(points)), best]


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
