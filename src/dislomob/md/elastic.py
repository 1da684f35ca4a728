"""Isotropic elasticity of straight dislocations in 2D (lines along box y, glide plane normal z).

Displacements (Hirth & Lothe) with a cut running from the core towards +z, and the resolved
shear stress on the glide plane from periodic rows of dislocations (closed-form row sums).
Lengths in Angstrom; stresses in the units of the shear modulus passed in.
"""

from __future__ import annotations

import numpy as np


def elastic_displacement(dx: np.ndarray, dz: np.ndarray, b_edge: float, nu: float) -> np.ndarray:
    """Single-valued (non-angular) part of a straight edge line's displacement (n,3) at offsets (dx, dz)."""
    r2 = np.maximum(dx * dx + dz * dz, 1e-12)
    ux = b_edge / (2 * np.pi) * dx * dz / (2 * (1 - nu) * r2)
    uz = -b_edge / (2 * np.pi) * ((1 - 2 * nu) / (4 * (1 - nu)) * np.log(r2) + (dx * dx - dz * dz) / (4 * (1 - nu) * r2))
    return np.stack([ux, np.zeros_like(ux), uz], axis=-1)


def path_angle(x: np.ndarray, z: np.ndarray, path: np.ndarray) -> np.ndarray:
    """Angle (rad) that a polyline ``path`` (m,2) in the x-z plane subtends at points (x, z); jumps by 2 pi across it."""
    total = np.zeros_like(x, dtype=float)
    for (px, pz), (qx, qz) in zip(path[:-1], path[1:]):
        ax, az, bx, bz = px - x, pz - z, qx - x, qz - z
        total += np.arctan2(ax * bz - az * bx, ax * bx + az * bz)
    return total


def row_resolved_shear(x: np.ndarray, z: float, spacing: float, b: float, theta_rad: float, mu: float, nu: float) -> np.ndarray:
    """Resolved shear stress on a glide plane at offsets x from a row of lines spaced ``spacing`` along x, a height z away."""
    u = np.asarray(x, dtype=float) * 2 * np.pi / spacing
    v = np.full_like(u, 2 * np.pi * z / spacing)
    sech = 2 * np.exp(-np.abs(v)) / (1 + np.exp(-2 * np.abs(v)))
    denom = 1 - np.cos(u) * sech
    cot = (np.sin(u) * sech - 1j * np.tanh(v)) / denom
    re_c = (np.pi / spacing) * cot.real
    dcot = -((np.pi / spacing) ** 2) * (1 + cot**2)
    dz_re_c = -dcot.imag
    edge = re_c + z * dz_re_c
    return mu * b / (2 * np.pi) * (np.sin(theta_rad) ** 2 / (1 - nu) * edge + np.cos(theta_rad) ** 2 * re_c)


def dipole_passing_stress(lx: float, lz: float, h: float, b: float, theta_rad: float, mu: float, nu: float, n_rows: int = 8) -> float:
    """Largest resolved shear stress (units of mu) a periodic dipole partner exerts on a line; the stress to pass it."""
    x = np.linspace(1e-3 * lx, lx * (1 - 1e-3), 2001)
    tau = sum(row_resolved_shear(x, h + m * lz, lx, b, theta_rad, mu, nu) for m in range(-n_rows, n_rows + 1))
    return float(np.max(np.abs(tau)))
