"""The crystal's frame: where the lattice is at every DXA frame, and line positions relative to it.

Under ``fix npt`` with a shear target the box tilts as the lines glide (plastic shear at constant
stress) and LAMMPS carries the atoms with the homogeneous deformation, so a lab-frame line position
includes the drift of the lattice at its height and any translation of the whole crystal. A mobility
law maps stress and temperature to a velocity relative to the crystal, so the MD records where the
crystal is.

Definition (lengths in Angstrom). At every DXA frame the MD records the *lattice displacement
profile* u_k (n_bins, 3): the mean displacement, since the first recorded frame, of the atoms in
bin k of n equal bins of fractional height s = (z - z_lo) / L_z at the first frame (atoms followed by
minimum-image steps between frames, so box flips and wrapping do not enter). Averaged over the whole cell in x and
y, the displacement of a periodic array of lines is flat between their glide planes (the slabs of
crystal move rigidly) and steps at each plane by b times the fraction of the plane swept. A point at
height z is referred to the lattice at its height by

    u(z) = 1/2 [ u_below(z) + u_above(z) ],

where u_below and u_above are straight-line fits of u_k over the bins whose centres lie between
``NEAR_ANGSTROM`` and ``FAR_ANGSTROM`` below and above z (periodic in z): the mean of the crystal on
the two sides of the glide plane, with the core's own atoms left out. The lattice position of a
point p at a frame is p - u(z_p); a displacement between two frames is the lab displacement minus
the change of u at the point's height. A rigid translation of every atom and a homogeneous shear of
the crystal change the lab positions and u alike, so they move no line.

Across the periodic boundary in z the crystal one period up is displaced by the change of the cell's
third row (box flips removed, :func:`cell_drift`), which :func:`lattice_shift` adds to bins it
reaches that way. :class:`CrystalMotion` holds this for a trajectory; every consumer (velocities,
featurize targets, rollout comparisons, loop tracking) goes through it.

Trajectories written before the profile existed can carry an *inferred* profile instead
(``dislomob.md.inferred_frame``, ``meta.lattice_reference = "inferred_inversion"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from dislomob.md.trajectory import Frame

BIN_ANGSTROM = 4.0  # target bin height (two (101) planes of Fe)
NEAR_ANGSTROM = 4.0  # bins nearer a point than this (core atoms) are left out of its reference
FAR_ANGSTROM = 16.0  # bins farther than this are left out (the next glide plane of the demo is 60 A away)


def n_bins_for(lz_angstrom: float) -> int:
    """Number of fractional-height bins for a cell of height ``lz_angstrom`` (at least 8)."""
    return max(8, int(round(lz_angstrom / BIN_ANGSTROM)))


def fractional_height(points: np.ndarray, cell: np.ndarray, origin: np.ndarray) -> np.ndarray:
    """Fractional height s in [0, 1) of points (n,3) Angstrom in a cell whose third row is (xz, yz, L_z)."""
    return ((np.asarray(points, dtype=np.float64)[:, 2] - origin[2]) / cell[2, 2]) % 1.0


class DisplacementTracker:
    """Accumulated displacement (n,3) Angstrom of every atom since the first frame, by minimum-image steps,
    and each atom's fractional height at the first frame (``heights``, the bin it counts in).

    State is real here: the previous positions and the running sum. Steps between frames must be below
    half a cell row (0.1 ps apart they are ~0.1-0.5 Angstrom). Atoms are binned by where they were at the
    first frame, so an atom that crosses the periodic boundary in z keeps counting with its own slab.
    """

    def __init__(self, positions: np.ndarray, cell: np.ndarray, origin: np.ndarray) -> None:
        self._last = np.array(positions, dtype=np.float64, copy=True)
        self.displacement = np.zeros_like(self._last)
        self.heights = fractional_height(self._last, cell, origin)

    def update(self, positions: np.ndarray, cell: np.ndarray) -> np.ndarray:
        """Add the minimum-image step from the last positions to ``positions`` (n,3) in ``cell``; return the sum."""
        pos = np.asarray(positions, dtype=np.float64)
        step = pos - self._last
        step -= np.rint(step @ np.linalg.inv(cell)) @ cell
        self.displacement += step
        self._last = pos.copy()
        return self.displacement


def displacement_profile(displacement: np.ndarray, heights: np.ndarray, n_bins: int) -> np.ndarray:
    """Mean displacement (n_bins, 3) Angstrom of the atoms in each bin of fractional height ``heights`` (n,) in
    [0, 1) (NaN where a bin is empty)."""
    k = np.minimum((np.asarray(heights) * n_bins).astype(np.int64), n_bins - 1)
    count = np.bincount(k, minlength=n_bins).astype(np.float64)
    out = np.stack([np.bincount(k, weights=displacement[:, c], minlength=n_bins) for c in range(3)], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return out / count[:, None]


def _side_value(d: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Value at d = 0 (3,) of a straight-line fit of u (m,3) against signed distance d (m,); the mean for one bin."""
    if len(d) == 1 or np.ptp(d) == 0:
        return u.mean(axis=0)
    a = np.stack([np.ones_like(d), d], axis=1)
    coef, *_ = np.linalg.lstsq(a, u, rcond=None)
    return coef[0]


def lattice_shift(profile: np.ndarray | None, cell: np.ndarray, origin: np.ndarray, drift: np.ndarray,
                  points: np.ndarray) -> np.ndarray:
    """Displacement (n,3) Angstrom of the crystal at each point's height (module docstring); zeros without a profile.

    ``drift`` (3,) Angstrom is the change of the cell's third row since the first frame with box flips
    removed: the crystal one period up is displaced by that much more, so a bin reached across the
    periodic boundary counts with it.
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    if profile is None:
        return np.zeros_like(points)
    profile = np.asarray(profile, dtype=np.float64)
    drift = np.asarray(drift, dtype=np.float64)
    n_bins = len(profile)
    lz = float(cell[2, 2])
    centres = (np.arange(n_bins) + 0.5) / n_bins
    ok = np.all(np.isfinite(profile), axis=1)
    far = min(FAR_ANGSTROM, 0.5 * lz)
    s = fractional_height(points, cell, origin)
    out = np.empty_like(points)
    cache: dict[int, np.ndarray] = {}
    for i, si in enumerate(s):
        key = int(round(si * 64 * n_bins))  # points within 1/64 of a bin share their reference
        if key not in cache:
            raw = centres - si
            wrap = np.round(raw)  # +1: the bin's image below, -1: above
            d = (raw - wrap) * lz
            u = profile - wrap[:, None] * drift[None, :]
            below = ok & (d <= -NEAR_ANGSTROM) & (d >= -far)
            above = ok & (d >= NEAR_ANGSTROM) & (d <= far)
            if not below.any() or not above.any():
                raise ValueError(f"lattice profile of {n_bins} bins over L_z = {lz:.4g} A has no atoms "
                                 f"{NEAR_ANGSTROM:g}-{far:g} A on both sides of height s = {si:.4f}")
            cache[key] = 0.5 * (_side_value(d[below], u[below]) + _side_value(d[above], u[above]))
        out[i] = cache[key]
    return out


def cell_drift(cells: Sequence[np.ndarray]) -> np.ndarray:
    """Change (n,3) Angstrom of the cell's third row since the first cell, box flips removed (cell rows a, b, c)."""
    cells = [np.asarray(c, dtype=np.float64) for c in cells]
    out = np.zeros((len(cells), 3))
    for k in range(1, len(cells)):
        inc = cells[k][2] - cells[k - 1][2]
        a, b = cells[k][0], cells[k][1]
        inc = inc - np.round(inc[1] / b[1]) * b
        out[k] = out[k - 1] + inc - np.round(inc[0] / a[0]) * a
    return out


@dataclass(frozen=True)
class CrystalMotion:
    """Where the crystal is at every frame of a trajectory: profiles (None: not recorded), cells, origins, drift."""

    profiles: list[np.ndarray | None]
    cells: list[np.ndarray]
    origins: list[np.ndarray]
    drift: np.ndarray

    @classmethod
    def of(cls, frames: Sequence[Frame]) -> "CrystalMotion":
        """The crystal's motion over ``frames`` (a whole trajectory, or its frames from the first recorded one)."""
        cells = [np.asarray(f.cell, dtype=np.float64) for f in frames]
        return cls([f.lattice_u for f in frames], cells, [np.asarray(f.origin, dtype=np.float64) for f in frames],
                    cell_drift(cells))

    @property
    def recorded(self) -> bool:
        """Whether every frame has a profile (else the lab frame is all there is)."""
        return bool(self.profiles) and all(p is not None for p in self.profiles)

    def at(self, k: int, points: np.ndarray) -> np.ndarray:
        """The crystal's displacement (n,3) Angstrom at frame ``k`` since the first frame, at each point's height."""
        return lattice_shift(self.profiles[k], self.cells[k], self.origins[k], self.drift[k], points)

    def between(self, i: int, k: int, points: np.ndarray) -> np.ndarray:
        """The crystal's displacement (n,3) Angstrom from frame ``i`` to frame ``k`` at each point's height."""
        return self.at(k, points) - self.at(i, points)


def in_crystal_frame_of(frames: Sequence[Frame], motion: CrystalMotion, k: int, i: int) -> Frame:
    """Frame ``k`` with every line point moved back by the crystal's displacement since frame ``i``.

    Lines of the result and of frame ``i`` differ by their motion relative to the crystal (their own
    cell is kept: displacements are measured with minimum images, as in the lab frame).
    """
    fr = frames[k]
    if not motion.recorded or k == i:
        return fr
    lines = [replace(ln, points=ln.points - motion.between(i, k, ln.points)) for ln in fr.lines]
    return replace(fr, lines=lines)
