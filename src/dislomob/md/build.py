"""Initial atomistic configurations: periodic dislocation dipoles and shear loops in BCC.

Positions in Angstrom in the box frame (x = glide, y = line, z = plane normal). The dipole is a
+b/-b pair in the quadrupolar arrangement (half a box apart in x and in z, so that neither glide
nor cross-slip pulls the pair together), made by removing a slab of thickness |b| sin(theta) along
the vertical parts of a staircase cut between the cores and applying the Volterra field summed over
periodic images with the linear (non-periodic) remainder taken out. The loop is a circular shear loop whose
displacement is the Burgers vector times the solid angle of its disc over 4 pi, summed over the disc's
images along the plane normal with the remainder taken out, in a cell that carries the loop's plastic shear.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dislomob.md.crystal import BURGERS, Orientation, lattice_period
from dislomob.md.elastic import dipole_passing_stress, elastic_displacement, path_angle
from dislomob.md.lattice import bcc_positions, box_lengths

PLANE_SPACING_FACTOR = 1 / math.sqrt(2)
LOOP_Z_IMAGES = 4  # periodic images of a shear loop's disc on each side along the plane normal


@dataclass(frozen=True)
class Configuration:
    """Atoms (n,3) Angstrom in a periodic cell (rows, upper-triangular as LAMMPS wants) near ``lengths``."""

    positions: np.ndarray
    lengths: np.ndarray
    cell: np.ndarray
    orientation: Orientation
    burgers_box: np.ndarray
    geometry: str
    cores_angstrom: np.ndarray
    passing_stress_gpa: float | None = None
    rotation: np.ndarray | None = None

    def crystal_to_box(self) -> np.ndarray:
        """Rows = box x, y, z in crystal coordinates (the orientation's, turned by any lattice rotation)."""
        return self.orientation.rotation() if self.rotation is None else self.rotation


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
    burgers = (1.0 if b[0] >= 0 else -1.0) * b
    width = abs(b[0])
    x1 = _between_columns(pos[:, 0], lx, 0.25 * lx)
    x2 = _between_columns(pos[:, 0], lx, x1 + 0.5 * lx)
    z1 = (math.floor(0.25 * lz / d) + 0.5) * d
    zm = z1 + round(0.25 * lz / d) * d
    z2 = z1 + round(0.5 * lz / d) * d
    path = np.array([[x1, z1], [x1, zm], [x2, zm], [x2, z2]])
    if width > 1e-6:
        remove = ((pos[:, 2] > z1) & (pos[:, 2] < zm) & (np.abs(_wrap(pos[:, 0] - x1, lx)) < width / 2)) | (
            (pos[:, 2] > zm) & (pos[:, 2] < z2) & (np.abs(_wrap(pos[:, 0] - x2, lx)) < width / 2)
        )
        pos = pos[~remove]
    u = _dipole_field(pos, path, burgers, lengths, nu, images)
    u -= _linear_remainder(path, burgers, lengths, nu, images)(pos)
    g = _plastic_map(lengths, burgers)
    new = (pos + u) @ g.T
    cell = (g @ np.diag(lengths)).T
    theta = math.radians(o.angle_deg)
    tau_p = dipole_passing_stress(lx, lz, z2 - z1, bmag, theta, mu_gpa, nu)
    cores = np.array([[x1, 0.0, z1], [x2, 0.0, z2]]) @ g.T
    spin = _rotation_part(g)
    return Configuration(new, lengths, cell, o, spin @ burgers, "dipole", cores, tau_p, spin @ o.rotation())


def _plastic_map(lengths: np.ndarray, burgers: np.ndarray) -> np.ndarray:
    """Affine map (3x3) that gives the cell the dipole's average plastic distortion, so it holds no internal stress.

    The staircase cut crosses half of each x-row (jump -b) and half of each z-column (jump +b), so
    a -> a - b/2 and c -> c + b/2; a rigid rotation about z then puts a back along x (LAMMPS form).
    The lattice turns with it by atan(b_y / 2 Lx), recorded in the configuration's rotation.
    """
    lx, _, lz = lengths
    beta = np.zeros((3, 3))
    beta[:, 0] = -burgers / (2 * lx)
    beta[:, 2] = burgers / (2 * lz)
    f = np.eye(3) + beta
    a = f[:, 0]
    alpha = -math.atan2(a[1], a[0])
    rz = np.array([[math.cos(alpha), -math.sin(alpha), 0.0], [math.sin(alpha), math.cos(alpha), 0.0], [0.0, 0.0, 1.0]])
    return rz @ f


def _rotation_part(g: np.ndarray) -> np.ndarray:
    """Rotation factor R of the polar decomposition g = R U."""
    u, _, vt = np.linalg.svd(g)
    return u @ vt


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


def _dipole_field(pos: np.ndarray, path: np.ndarray, burgers: np.ndarray, lengths: np.ndarray, nu: float, images: int) -> np.ndarray:
    """Volterra displacement (n,3) of a dipole whose cut follows ``path`` (lower core to upper core), summed over images.

    The angular part is ``burgers`` times the angle the cut subtends over 2 pi, so the jump across the
    cut closes the removed slab; the single-valued elastic parts belong to -b (lower) and +b (upper).
    """
    lx, _, lz = lengths
    u = np.zeros_like(pos)
    lower, upper = path[0], path[-1]
    for i in range(-images, images + 1):
        for k in range(-images, images + 1):
            x = pos[:, 0] - i * lx
            z = pos[:, 2] - k * lz
            u += np.outer(path_angle(x, z, path) / (2 * np.pi), burgers)
            u += elastic_displacement(x - lower[0], z - lower[1], -burgers[0], nu)
            u += elastic_displacement(x - upper[0], z - upper[1], burgers[0], nu)
    return u


def _linear_remainder(path: np.ndarray, burgers: np.ndarray, lengths: np.ndarray, nu: float, images: int):
    """Linear field that makes the truncated image sum periodic (Cai et al. 2003), as a function of position.

    Jumps across the x faces are sampled at heights outside the cores' strip and across the z faces at
    abscissae outside the cut's horizontal run, where no cut is crossed.
    """
    lx, _, lz = lengths
    (x1, z1), (x2, z2) = path[0], path[-1]
    zs = np.concatenate([np.linspace(0.1, 0.9, 5) * z1, z2 + np.linspace(0.1, 0.9, 5) * (lz - z2)])
    xs = x2 + np.linspace(0.1, 0.9, 9) * (lx - (x2 - x1))
    face_x = np.stack([np.full_like(zs, x1 - 0.25 * lx), np.zeros_like(zs), zs], 1)
    face_z = np.stack([xs, np.zeros_like(xs), np.zeros_like(xs)], 1)

    def jump(p: np.ndarray, shift: list[float]) -> np.ndarray:
        return (_dipole_field(p + shift, path, burgers, lengths, nu, images) - _dipole_field(p, path, burgers, lengths, nu, images)).mean(0)

    jump_x, jump_z = jump(face_x, [lx, 0, 0]), jump(face_z, [0, 0, lz])

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
    need = 2 * radius_angstrom + 20.0
    if min(target_angstrom[0], target_angstrom[1]) >= need:
        # the nearest whole lattice periods may fall short of an in-plane target that fits the loop
        for k, d in enumerate((o.glide, o.line)):
            if lengths[k] < need:
                lengths[k] = lattice_period(d, a) * math.ceil(need / lattice_period(d, a))
    lx, ly, lz = lengths
    if need > min(lx, ly):
        raise ValueError(f"loop radius {radius_angstrom:.1f} A does not fit a {lx:.1f} x {ly:.1f} A plane: allowed <= {(min(lx, ly) - 20) / 2:.1f} A")
    pos = bcc_positions(o, a, lengths)
    d = a * PLANE_SPACING_FACTOR
    center = np.array([0.5 * lx, 0.5 * ly, (math.floor(0.5 * lz / d) + 0.5) * d])
    b = burgers_in_box(o, a)

    def field(p: np.ndarray) -> np.ndarray:
        return -np.outer(_stacked_solid_angle(p - center, radius_angstrom, lz) / (4 * np.pi), b)

    # what the truncated stack leaves across the z faces, sampled beside the loop, is taken out linearly
    beside = np.array([[0.0, 0.0], [0.0, 0.5 * ly], [0.5 * lx, 0.0]])
    top, bottom = (np.column_stack([beside, np.full(3, z)]) for z in (lz, 0.0))
    mismatch = (field(top) - field(bottom)).mean(axis=0)
    u = field(pos) - np.outer(pos[:, 2] / lz, mismatch)
    # the cell takes the loop's average plastic shear b (x) n * area / volume, so it holds no mean stress
    g = np.eye(3)
    g[:, 2] += np.pi * radius_angstrom**2 / (lx * ly * lz) * b
    cell = (g @ np.diag(lengths)).T
    new = (pos + u) @ g.T
    return Configuration(new, lengths, cell, o, b, "loop", (g @ center)[None, :])


def _stacked_solid_angle(r: np.ndarray, radius: float, height: float, images: int = LOOP_Z_IMAGES) -> np.ndarray:
    """Solid angle (sr) of the disc and its periodic images ``height`` apart along z, symmetric sum, at points r (n,3).

    A single disc's displacement jumps by (1 - h / sqrt(h^2 + 4 R^2)) b between the top and bottom faces of a
    cell of height h above and below the disc (over b / 2 once R > 0.87 h): a loop built from it alone in a
    thin periodic cell relaxes into two loops. The images' sum telescopes to a small, nearly uniform mismatch.
    """
    return sum(_disc_solid_angle(r - np.array([0.0, 0.0, k * height]), radius) for k in range(-images, images + 1))


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
