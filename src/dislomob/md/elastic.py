"""Isotropic elasticity of straight dislocations in 2D (lines along box y, glide plane normal z).

Displacements (Hirth & Lothe) with a cut running from the core towards +z, and the resolved
shear stress on the glide plane from periodic rows of dislocations (closed-form row sums).
Lengths in Angstrom; stresses in the units of the shear modulus passed in.
"""

from __future__ import annotations

import numpy as np


def displacement(dx: np.ndarray, dz: np.ndarray, b_edge: float, b_screw: float, nu: float) -> np.ndarray:
    """Displacement (n,3) at offsets (dx, dz) from a straight line along y, cut along +z from the core."""
    r2 = np.maximum(dx * dx + dz * dz, 1e-12)
    phi = np.arctan2(dx, -dz)
    ux = b_edge / (2 * np.pi) * (phi + dx * dz / (2 * (1 - nu) * r2))
    uz = -b_edge / (2 * np.pi) * ((1 - 2 * nu) / (4 * (1 - nu)) * np.log(r2) + (dx * dx - dz * dz) / (4 * (1 - nu) * r2))
    uy = b_screw / (2 * np.pi) * phi
    return np.stack([ux, uy, uz], axis=-1)


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
