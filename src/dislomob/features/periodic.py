"""Stress of a periodic dislocation network at field points: explicit image sums plus tails.

Every line is repeated over lattice translations n0*a0 + n1*a1 + n2*a2 with |n_i| <= ``images``.
An infinite line along cell row k is unrolled over ``line_images`` periods on each side and
continued by straight semi-infinite tails along its period, so it is infinite in its own
direction; its lattice translations then skip row k. Lengths in Angstrom, stress in the units of mu.
"""

from __future__ import annotations

import itertools

import numpy as np

from dislomob.features.discretize import NodeLine
from dislomob.features.stress import DEFAULT_MAX_PAIRS, segment_stress, semi_infinite_stress


def _translations(cell: np.ndarray, images: int, skip_axis: int | None) -> np.ndarray:
    ranges = [range(-images, images + 1) if k != skip_axis else range(0, 1) for k in range(3)]
    n = np.array(list(itertools.product(*ranges)), dtype=np.float64)
    return n @ cell


def line_sources(line: NodeLine, cell: np.ndarray, images: int, line_images: int):
    """(starts, ends, burgers, tail_starts, tail_dirs, tail_burgers) of one line's periodic images, Angstrom."""
    if images < 0 or line_images < 0:
        raise ValueError(f"images={images}, line_images={line_images} not allowed: >= 0")
    starts, ends, _ = line.segment_ends()
    b = line.burgers
    if line.period_axis is None:
        shifts = _translations(cell, images, None)
        s = (starts[None] + shifts[:, None]).reshape(-1, 3)
        e = (ends[None] + shifts[:, None]).reshape(-1, 3)
        return s, e, np.tile(b, (len(s), 1)), np.zeros((0, 3)), np.zeros((0, 3)), np.zeros((0, 3))
    period = line.period
    k = np.arange(-line_images, line_images + 1, dtype=np.float64)
    chain_s = (starts[None] + k[:, None, None] * period).reshape(-1, 3)
    chain_e = (ends[None] + k[:, None, None] * period).reshape(-1, 3)
    t = period / np.linalg.norm(period)
    # the straight tails run along the line's mean axis; short connectors join them to the chain ends
    offset = line.nodes.mean(axis=0) - line.nodes[0]
    offset -= (offset @ t) * t
    chain_end = line.nodes[0] + (line_images + 1) * period
    chain_begin = line.nodes[0] - line_images * period
    head, tail = chain_end + offset, chain_begin + offset
    if np.linalg.norm(offset) > 1e-9 * np.linalg.norm(period):
        chain_s = np.vstack([chain_s, chain_end, tail])
        chain_e = np.vstack([chain_e, head, chain_begin])
    shifts = _translations(cell, images, line.period_axis)
    s = (chain_s[None] + shifts[:, None]).reshape(-1, 3)
    e = (chain_e[None] + shifts[:, None]).reshape(-1, 3)
    ts = np.vstack([head + shifts, tail + shifts])
    td = np.vstack([np.tile(t, (len(shifts), 1)), np.tile(-t, (len(shifts), 1))])
    tb = np.vstack([np.tile(b, (len(shifts), 1)), np.tile(-b, (len(shifts), 1))])
    return s, e, np.tile(b, (len(s), 1)), ts, td, tb


def network_stress(points: np.ndarray, lines: list[NodeLine], cell: np.ndarray, mu: float, nu: float, a: float,
                   images: int, line_images: int, max_pairs: int = DEFAULT_MAX_PAIRS) -> np.ndarray:
    """Stress (n_points, 3, 3) of all lines and their periodic images at ``points``, units of ``mu``."""
    parts = [line_sources(ln, np.asarray(cell, dtype=np.float64), images, line_images) for ln in lines]
    if not parts:
        return np.zeros((len(points), 3, 3))
    s, e, b, ts, td, tb = (np.vstack([p[i] for p in parts]) for i in range(6))
    out = segment_stress(points, s, e, b, mu, nu, a, max_pairs)
    if len(ts):
        out += semi_infinite_stress(points, ts, td, tb, mu, nu, a, max_pairs)
    return out


def _face_points(origin: np.ndarray, u: np.ndarray, v: np.ndarray, nu_cells: int, nv_cells: int, q: int):
    """Gauss points (m,3) and area weights (m,) on the parallelogram origin + [0,1]u + [0,1]v, q per cell side."""
    xi, w = np.polynomial.legendre.leggauss(q)
    su = (np.arange(nu_cells)[:, None] + 0.5 * (xi[None] + 1.0)).ravel() / nu_cells
    sv = (np.arange(nv_cells)[:, None] + 0.5 * (xi[None] + 1.0)).ravel() / nv_cells
    wu = np.tile(0.5 * w, nu_cells) / nu_cells
    wv = np.tile(0.5 * w, nv_cells) / nv_cells
    pts = origin + su[:, None, None] * u + sv[None, :, None] * v
    area = np.linalg.norm(np.cross(u, v))
    return pts.reshape(-1, 3), (wu[:, None] * wv[None, :]).ravel() * area


def _surface_moment(line: NodeLine, faces, centre: np.ndarray, mu: float, nu: float, a: float, line_images: int,
                    max_pairs: int) -> np.ndarray:
    """sum over faces of integral (x - centre)_j (sigma_0 . n)_i dS (i, j) for one line alone (no lateral images)."""
    s, e, b, ts, td, tb = line_sources(line, np.eye(3), 0, line_images)
    out = np.zeros((3, 3))
    for origin, u, v, nu_c, nv_c, normal in faces:
        pts, w = _face_points(origin, u, v, nu_c, nv_c, 4)
        sig = segment_stress(pts, s, e, b, mu, nu, a, max_pairs)
        if len(ts):
            sig += semi_infinite_stress(pts, ts, td, tb, mu, nu, a, max_pairs)
        traction = sig @ normal
        out += np.einsum("m,mi,mj->ij", w, traction, pts - centre)
    return out


def mean_image_stress(lines: list[NodeLine], cell: np.ndarray, mu: float, nu: float, a: float, images: int,
                      line_images: int, max_pairs: int = DEFAULT_MAX_PAIRS) -> np.ndarray:
    """Cell average (3,3) of :func:`network_stress`, units of mu, from surface integrals.

    The average over the cell of the image sum is the integral of one network's field over the union
    B of the image cells, divided by the cell volume; as the field is divergence-free,
    integral_B sigma_ij = surface integral of x_j (sigma . n)_i over the boundary of B (far from the
    lines, so a coarse Gauss rule suffices). For an infinite line B is a prism one period long; the
    end caps cancel by periodicity for j not along the line, and the component along the line is
    taken from plane strain, sigma_ll = nu (sigma_11 + sigma_22) in the cross-section.
    """
    cell = np.asarray(cell, dtype=np.float64)
    volume = abs(np.linalg.det(cell))
    span = 2 * images + 1
    total = np.zeros((3, 3))
    if not lines:
        return total
    # the averaging cell is centred on the network, where the field points (its GPs) lie
    cell_corner = np.vstack([ln.nodes for ln in lines]).mean(axis=0) - 0.5 * cell.sum(axis=0)
    for ln in lines:
        axes = [k for k in range(3) if k != ln.period_axis]
        corner = cell_corner - images * cell[axes].sum(axis=0)
        ext = {k: (span if k in axes else 1) for k in range(3)}
        edges = {k: ext[k] * cell[k] for k in range(3)}
        faces = []
        for k in axes:
            p, q = [m for m in range(3) if m != k]
            normal = np.cross(edges[p], edges[q])
            normal /= np.linalg.norm(normal)
            if normal @ edges[k] < 0:
                normal = -normal
            faces.append((corner + edges[k], edges[p], edges[q], ext[p], ext[q], normal))
            faces.append((corner, edges[p], edges[q], ext[p], ext[q], -normal))
        m = _surface_moment(ln, faces, cell_corner + 0.5 * cell.sum(axis=0), mu, nu, a, line_images, max_pairs)
        if ln.period_axis is None:
            total += 0.5 * (m + m.T)
            continue
        # rotate so that the line's period is e_2, use x_j with j != 2, then plane strain for (2, 2)
        t = ln.period / np.linalg.norm(ln.period)
        e0 = cell[axes[0]] - (cell[axes[0]] @ t) * t  # from the cell, so the result rotates with it
        e0 /= np.linalg.norm(e0)
        rot = np.stack([e0, np.cross(t, e0), t])  # rows: e0, e1, t
        mr = rot @ m @ rot.T  # mr[i, j] = integral x'_j t'_i
        loc = np.zeros((3, 3))
        loc[:2, :2] = 0.5 * (mr[:2, :2] + mr[:2, :2].T)
        loc[2, :2] = loc[:2, 2] = mr[2, :2]
        loc[2, 2] = nu * (loc[0, 0] + loc[1, 1])
        total += rot.T @ loc @ rot
    return total / volume
