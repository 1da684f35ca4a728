"""Local orthonormal frames of dislocation lines.

A line's frame has rows (b_hat, n_hat, s_hat): the unit Burgers vector, the slip plane normal made
orthogonal to it, and s_hat = b_hat x n_hat (in the slip plane, perpendicular to b). Model inputs
expressed in these frames live in dislomob.features.invariants.
"""

from __future__ import annotations

import numpy as np

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


def to_local(frames: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Cartesian vectors (n,3) expressed in the frames (n,3,3): components along (b_hat, n_hat, s_hat)."""
    return np.einsum("nia,na->ni", frames, vectors)
