"""Initial atomistic configurations: periodic dislocation dipoles and shear loops in BCC.

Positions in Angstrom in the box frame (x = glide, y = line, z = plane normal). The dipole is a
+b/-b pair on two glide planes half a box apart, made by removing a slab of thickness
|b| sin(theta) between the cores and applying the Volterra field summed over periodic images
with the linear (non-periodic) remainder taken out. The loop is a circular shear loop whose
displacement is the Burgers vector times the solid angle of its disc over 4 pi.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dislomob.md.crystal import BURGERS, Orientation
from dislomob.md.elastic import dipole_passing_stress, displacement
from dislomob.md.lattice import bcc_positions, box_lengths

PLANE_SPACING_FACTOR = 1 / math.sqrt(2)


@dataclass(frozen=True)
class Configuration:
    """Atoms (n,3) Angstrom in an orthogonal periodic box of ``lengths``; dislocation description."""

    positions: np.ndarray
    lengths: np.ndarray
    orientation: Orientation
    burgers_box: np.ndarray
    geometry: str
    cores_angstrom: np.ndarray
    passing_stress_gpa: float | None = None


def burgers_in_box(o: Orientation, a: float) -> np.ndarray:
    """Burgers vector 1/2[1 1 -1] in box coordinates, Angstrom."""
    return o.rotation() @ (BURGERS * a)


def build_dipole(
    o: Orientation,
    a: float,
    target_angstrom: tuple[float, float, float],
    mu_gpa: float,
    nu: float,
    images: int = 4,
) -> Configuration:
    """A fully periodic +b/-b dipole of character ``o`` in a box near ``target_angstrom`` (x, y, z)."""
    lengths = box_lengths(o, a, target_angstrom)
    lx, ly, lz = lengths
    d = a * PLANE_SPACING_FACTOR
    if lz < 8 * d:
        raise ValueError(f"box height {lz:.1f} A too small for a dipole: allowed >= {8 * d:.1f} A")
    pos = bcc_positions(o, a, lengths)
    b = burgers_in_box(o, a)
    bmag = float(np.linalg.norm(b))
    sign = 1.0 if b[0] >= 0 else -1.0
    width = abs(b[0])
    x0 = _between_columns(pos[:, 0], lx, 0.5 * lx)
    z1 = (math.floor(0.25 * lz / d) + 0.5) * d
    z2 = z1 + (round(0.5 * lz / d)) * d
    in_strip = (pos[:, 2] > z1) & (pos[:, 2] < z2)
    dxp = _wrap(pos[:, 0] - x0, lx)
    if width > 1e-6:
        remove = in_strip & (np.abs(dxp) < width / 2)
        pos = pos[~remove]
    cores = np.array([[x0, 0.0, z1], [x0, 0.0, z2]])
    burgers = [-sign * b, sign * b]
    u = _image_sum(pos, cores, burgers, lengths, nu, images)
    u -= _linear_remainder(cores, burgers, lengths, nu, images)(pos)
    new = pos + u
    new[:, 0] %= lx
    new[:, 1] %= ly
    new[:, 2] %= lz
    theta = math.radians(o.angle_deg)
    tau_p = dipole_passing_stress(lx, lz, z2 - z1, bmag, theta, mu_gpa, nu)
    return Configuration(new, lengths, o, sign * b, "dipole", cores, tau_p)


def _between_columns(x: np.ndarray, lx: float, near: float) -> float:
    """An x between atomic columns near ``near`` (the middle of the largest gap)."""
    xs = np.unique(np.round(np.sort(x % lx), 4))
    gaps = np.diff(np.concatenate([xs, [xs[0] + lx]]))
    mids = (xs + gaps / 2) % lx
    big = gaps > 0.5 * gaps.max()
    cand = mids[big]
    return float(cand[np.argmin(np.abs(cand - near))])


def _wrap(d: np.ndarray, length: float) -> np.ndarray:
    return d - length * np.round(d / length)


def _image_sum(pos: np.ndarray, cores: np.ndarray, burgers: list[np.ndarray], lengths: np.ndarray, nu: float, images: int) -> np.ndarray:
    lx, _, lz = lengths
    u = np.zeros_like(pos)
    for core, bv in zip(cores, burgers):
        for i in range(-images, images + 1):
            for k in range(-images, images + 1):
                dx = pos[:, 0] - core[0] - i * lx
                dz = pos[:, 2] - core[2] - k * lz
                u += displacement(dx, dz, bv[0], bv[1], nu)
    return u


def _linear_remainder(cores: np.ndarray, burgers: list[np.ndarray], lengths: np.ndarray, nu: float, images: int):
    """Linear field that makes the truncated image sum periodic (Cai et al. 2003), as a function of position."""
    lx, _, lz = lengths
    zs = np.linspace(0.1, 0.9, 9) * lz
    xs = np.linspace(0.1, 0.9, 9) * lx
    face_x = np.stack([np.zeros_like(zs), np.zeros_like(zs), zs], 1)
    face_z = np.stack([xs, np.zeros_like(xs), np.zeros_like(xs)], 1)
    face_x[:, 0] = (cores[0, 0] + 0.5 * lx) % lx
    jump_x = (_image_sum(face_x + [lx, 0, 0], cores, burgers, lengths, nu, images) - _image_sum(face_x, cores, burgers, lengths, nu, images)).mean(0)
    jump_z = (_image_sum(face_z + [0, 0, lz], cores, burgers, lengths, nu, images) - _image_sum(face_z, cores, burgers, lengths, nu, images)).mean(0)

    def field(p: np.ndarray) -> np.ndarray:
        return np.outer(p[:, 0] / lx, jump_x) + np.outer(p[:, 2] / lz, jump_z)

    return field


def build_loop(
    o: Orientation,
    a: float,
    target_angstrom: tuple[float, float, float],
    radius_angstrom: float,
) -> Configuration:
    """A circular shear loop of ``radius_angstrom`` on the (101) plane in the middle of the box."""
    lengths = box_lengths(o, a, target_angstrom)
    lx, ly, lz = lengths
    if 2 * radius_angstrom + 20.0 > min(lx, ly):
        raise ValueError(f"loop radius {radius_angstrom:.1f} A does not fit a {lx:.1f} x {ly:.1f} A plane: allowed <= {(min(lx, ly) - 20) / 2:.1f} A")
    pos = bcc_positions(o, a, lengths)
    d = a * PLANE_SPACING_FACTOR
    center = np.array([0.5 * lx, 0.5 * ly, (math.floor(0.5 * lz / d) + 0.5) * d])
    b = burgers_in_box(o, a)
    omega = _disc_solid_angle(pos - center, radius_angstrom)
    new = pos - np.outer(omega / (4 * np.pi), b)
    new %= lengths
    return Configuration(new, lengths, o, b, "loop", center[None, :])


def _disc_solid_angle(r: np.ndarray, radius: float, n_edges: int = 96) -> np.ndarray:
    """Solid angle (sr) of the disc of ``radius`` in the plane z = 0 centred at the origin, seen from points r (n,3)."""
    t = np.linspace(0, 2 * np.pi, n_edges + 1)
    verts = np.stack([radius * np.cos(t), radius * np.sin(t), np.zeros_like(t)], 1)
    r1 = -r
    r1n = np.linalg.norm(r1, axis=1)
    omega = np.zeros(len(r))
    for k in range(n_edges):
        r2 = verts[k] - r
        r3 = verts[k + 1] - r
        r2n = np.linalg.norm(r2, axis=1)
        r3n = np.linalg.norm(r3, axis=1)
        num = np.einsum("ij,ij->i", r1, np.cross(r2, r3))
        den = (r1n * r2n * r3n + np.einsum("ij,ij->i", r1, r2) * r3n + np.einsum("ij,ij->i", r1, r3) * r2n
               + np.einsum("ij,ij->i", r2, r3) * r1n)
        omega += 2 * np.arctan2(num, den)
    return omega
