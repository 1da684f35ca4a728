"""Crystallography of the BCC slip system b = 1/2[1 1 -1] on (1 0 1).

A line direction in the glide plane is [h k -h]; the box is x = [k -2h -k] (glide direction),
y = [h k -h] (line), z = [1 0 1] (plane normal). Angles are in degrees between the Burgers
vector and the line sense.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

BURGERS = np.array([0.5, 0.5, -0.5])
PLANE_NORMAL = np.array([1, 0, 1])


@dataclass(frozen=True)
class Orientation:
    """A line character: Miller indices of box axes and the character angle in degrees."""

    angle_deg: float
    line: tuple[int, int, int]
    glide: tuple[int, int, int]
    normal: tuple[int, int, int] = (1, 0, 1)

    def rotation(self) -> np.ndarray:
        """Rows = unit vectors of box x, y, z in crystal (cubic) coordinates."""
        rows = [np.array(v, dtype=float) for v in (self.glide, self.line, self.normal)]
        return np.array([r / np.linalg.norm(r) for r in rows])


def _reduce(v: tuple[int, ...]) -> tuple[int, ...]:
    g = 0
    for c in v:
        g = math.gcd(g, abs(c))
    return tuple(c // g for c in v) if g else v


def lattice_period(direction: tuple[int, int, int], a: float) -> float:
    """Shortest BCC lattice translation along a Miller direction, in the units of ``a``."""
    d = _reduce(direction)
    length = math.sqrt(sum(c * c for c in d))
    return a * length / 2 if all(c % 2 for c in d) else a * length


def character_angle(line: tuple[int, int, int]) -> float:
    """Angle in degrees between b = [1 1 -1] and the line direction."""
    v = np.array(line, dtype=float)
    c = float(v @ (2 * BURGERS)) / (np.linalg.norm(v) * math.sqrt(3))
    return math.degrees(math.acos(max(-1.0, min(1.0, c))))


@lru_cache(maxsize=4)
def available_orientations(max_index: int = 2) -> tuple[Orientation, ...]:
    """Distinct line characters from 0 to 180 degrees with |h|, |k| <= max_index, sorted by angle."""
    best: dict[float, Orientation] = {}
    for h in range(-max_index, max_index + 1):
        for k in range(-max_index, max_index + 1):
            if h == 0 and k == 0:
                continue
            line = _reduce((h, k, -h))
            if line != (h, k, -h):
                continue
            glide = _reduce((k, -2 * h, -k))
            ang = round(character_angle(line), 6)
            o = Orientation(angle_deg=ang, line=line, glide=glide)
            prev = best.get(ang)
            if prev is None or _cell_volume(o) < _cell_volume(prev):
                best[ang] = o
    return tuple(best[a] for a in sorted(best))


def _cell_volume(o: Orientation) -> float:
    return lattice_period(o.line, 1.0) * lattice_period(o.glide, 1.0)


def nearest_orientation(angle_deg: float, max_index: int = 2) -> Orientation:
    """The available character nearest to ``angle_deg`` (0 <= angle <= 180)."""
    if not (0.0 <= angle_deg <= 180.0) or math.isnan(angle_deg):
        raise ValueError(f"angle_deg={angle_deg} not allowed: 0 <= angle_deg <= 180")
    return min(available_orientations(max_index), key=lambda o: abs(o.angle_deg - angle_deg))
