"""Perfect BCC crystal in a rotated orthogonal periodic box (positions in Angstrom)."""

from __future__ import annotations

import itertools

import numpy as np

from dislomob.md.crystal import Orientation, lattice_period


def box_lengths(o: Orientation, a: float, target_angstrom: tuple[float, float, float]) -> np.ndarray:
    """Box edge lengths (Angstrom) nearest to the targets that are whole lattice periods along x, y, z."""
    periods = [lattice_period(d, a) for d in (o.glide, o.line, o.normal)]
    return np.array([p * max(1, round(t / p)) for p, t in zip(periods, target_angstrom)])


def bcc_positions(o: Orientation, a: float, lengths: np.ndarray) -> np.ndarray:
    """All BCC sites inside [0, L) of the box whose axes are ``o``'s rotation rows."""
    rot = o.rotation()
    corners = np.array(list(itertools.product(*[(0.0, L) for L in lengths])))
    crys = corners @ rot / a
    lo = np.floor(crys.min(axis=0)) - 1
    hi = np.ceil(crys.max(axis=0)) + 1
    grid = np.stack(np.meshgrid(*[np.arange(l, h + 1) for l, h in zip(lo, hi)], indexing="ij"), -1).reshape(-1, 3)
    sites = np.concatenate([grid, grid + 0.5]) * a
    box = sites @ rot.T
    eps = 1e-6 * a
    shifted = box + eps
    keep = np.all((shifted >= 0) & (shifted < lengths), axis=1)
    pos = box[keep]
    expected = 2.0 * np.prod(lengths) / a**3
    if abs(len(pos) - expected) > 0.5:
        raise RuntimeError(f"BCC fill gave {len(pos)} atoms, expected {expected:.1f}: box not commensurate")
    return pos
