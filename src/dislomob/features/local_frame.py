"""Local orthonormal frames of dislocation lines.

A line's frame has rows (b_hat, n_hat, s_hat): the unit Burgers vector, the slip plane normal made
orthogonal to it, and s_hat = b_hat x n_hat (in the slip plane, perpendicular to b). Model inputs
expressed in these frames live in dislomob.features.invariants.
"""

from __future__ import annotations

import numpy as np

MAX_BURGERS_OUT_OF_PLANE = 0.1


class FrameRowError(ValueError):
    """A row of :func:`line_frames` without a frame: ``row`` is its index, ``reason`` what ``line_frame`` says."""

    def __init__(self, row: int, reason: str):
        super().__init__(f"row {row}: {reason}")
        self.row, self.reason = row, reason


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


def line_frames(burgers: np.ndarray, plane_normals: np.ndarray) -> np.ndarray:
    """Frames (k, 3, 3) of ``line_frame`` for k Burgers vectors (3,) or (k, 3) and plane normals (k, 3), vectorized;
    the first bad row raises :class:`FrameRowError` with ``line_frame``'s reason."""
    n = np.asarray(plane_normals, dtype=np.float64).reshape(-1, 3)
    b = np.broadcast_to(np.asarray(burgers, dtype=np.float64), n.shape)
    nb, nn = np.linalg.norm(b, axis=1), np.linalg.norm(n, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        bh, nh = b / nb[:, None], n / nn[:, None]
        bad = ~((nb > 0) & (nn > 0)) | (np.abs(np.einsum("ka,ka->k", bh, nh)) > MAX_BURGERS_OUT_OF_PLANE)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        try:
            line_frame(b[k], n[k])
        except ValueError as err:
            raise FrameRowError(k, str(err)) from None
    nh = nh - np.einsum("ka,ka->k", nh, bh)[:, None] * bh
    nh /= np.linalg.norm(nh, axis=1)[:, None]
    return np.stack([bh, nh, np.cross(bh, nh)], axis=1)


def to_local(frames: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Cartesian vectors (n,3) expressed in the frames (n,3,3): components along (b_hat, n_hat, s_hat)."""
    return np.einsum("nia,na->ni", frames, vectors)
