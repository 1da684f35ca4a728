"""Local orthonormal frames of dislocation lines and the invariant features expressed in them.

A line's frame has rows (b_hat, n_hat, s_hat): the unit Burgers vector, the slip plane normal made
orthogonal to it, and s_hat = b_hat x n_hat (in the slip plane, perpendicular to b). Stresses are
in GPa, lengths in Angstrom, temperature in K. Features depend only on these frame components,
so rotating or translating a whole configuration (lines, cell, applied stress, slip plane)
leaves them unchanged.
"""

from __future__ import annotations

import numpy as np

GP_FEATURE_NAMES = (
    "sigma_bb_gpa", "sigma_nn_gpa", "sigma_ss_gpa", "sigma_bn_gpa", "sigma_bs_gpa", "sigma_ns_gpa",
    "pressure_gpa", "cos_character", "sin_character", "tangent_n", "segment_length_angstrom", "temperature_k",
)
NODE_FEATURE_NAMES = tuple(f"mean_{n}" for n in GP_FEATURE_NAMES) + (
    "prev_length_angstrom", "next_length_angstrom", "cos_turn",
)

MAX_BURGERS_OUT_OF_PLANE = 0.1


def line_frame(burgers: np.ndarray, plane_normal: np.ndarray) -> np.ndarray:
    """Rows (b_hat, n_hat, s_hat) of a line with Burgers vector ``burgers`` gliding on ``plane_normal``."""
    b = np.asarray(burgers, dtype=np.float64)
    n = np.asarray(plane_normal, dtype=np.float64)
    nb, nn = np.linalg.norm(b), np.linalg.norm(n)
    if not (nb > 0 and nn > 0):
        raise ValueError(f"zero Burgers vector {b.tolist()} or plane normal {n.tolist()}")
    bh, nh = b / nb, n / nn
    out_of_plane = abs(float(bh @ nh))
    if out_of_plane > MAX_BURGERS_OUT_OF_PLANE:
        raise ValueError(
            f"Burgers vector {np.round(b, 3).tolist()} is not in the slip plane {np.round(n, 3).tolist()}: "
            f"|b_hat . n_hat| = {out_of_plane:.3f} > {MAX_BURGERS_OUT_OF_PLANE}"
        )
    nh = nh - (nh @ bh) * bh
    nh /= np.linalg.norm(nh)
    return np.stack([bh, nh, np.cross(bh, nh)])


def gp_features(frames: np.ndarray, stress_gpa: np.ndarray, tangents: np.ndarray, lengths: np.ndarray,
                temperature_k: float) -> np.ndarray:
    """GP features (n, len(GP_FEATURE_NAMES)) from frames (n,3,3), stress (n,3,3) GPa, unit tangents, lengths (Angstrom)."""
    loc = np.einsum("nia,nab,njb->nij", frames, stress_gpa, frames)
    t_loc = np.einsum("nia,na->ni", frames, tangents)
    pressure = -np.trace(stress_gpa, axis1=1, axis2=2) / 3.0
    cols = [loc[:, 0, 0], loc[:, 1, 1], loc[:, 2, 2], loc[:, 0, 1], loc[:, 0, 2], loc[:, 1, 2], pressure,
            t_loc[:, 0], t_loc[:, 2], t_loc[:, 1], lengths, np.full(len(lengths), float(temperature_k))]
    return np.stack(cols, axis=1)


def to_local(frames: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Cartesian vectors (n,3) expressed in the frames (n,3,3): components along (b_hat, n_hat, s_hat)."""
    return np.einsum("nia,na->ni", frames, vectors)
