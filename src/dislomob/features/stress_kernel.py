"""Compiled (numba) kernel of the non-singular segment stress: the hot loop of featurize and of every DDD step.

Same formula as the numpy reference :func:`dislomob.features.stress._kernel` (Cai et al. 2006, "Y-vector"
form), evaluated per (point, segment endpoint) pair in float64 without temporaries. Points are split into
blocks of ``BLOCK`` that run in parallel (``prange``, numba's thread pool); inside a block the loop runs
over endpoints outside and over the block's points inside, so the inner loop has no loop-carried
dependence and compiles to SIMD code without fast-math (IEEE semantics, results within ~1e-14 of the
reference, only the summation order differs). Only the symmetric part A + A^T is accumulated (6 sums).

Threads: ``threads=None`` uses numba's current thread count, which is all cores of the machine unless
the environment variable ``NUMBA_NUM_THREADS`` or a ``numba.set_num_threads`` call in this thread says
otherwise; an integer sets ``numba.set_num_threads`` for this call only. The result does not depend on
the thread count (blocks are fixed, each point is summed in the same order). Threading layer: numba
picks tbb, else OpenMP (here), else its workqueue; OpenMP is not fork-safe, so a process that forks
after the first call and uses the kernel in the child should set ``NUMBA_THREADING_LAYER=workqueue``.

Compilation: the first call in a fresh environment compiles (2.9 s on the idle 2-core development VM,
~10 s when it is loaded) and writes the machine code next to this file in ``__pycache__`` (``cache=True``);
later processes load it in 0.4 s (first call, numba's thread pool included).
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import njit, prange

BLOCK = 64  # points per block: 6 accumulators + 3 coordinates x 64 doubles stay in L1
_TINY = float(np.finfo(np.float64).tiny)


@njit(parallel=True, fastmath=False, cache=True, error_model="numpy", boundscheck=False)
def _accumulate(xs, ends, sign, t, b, bt, nu, a2, scale, out):  # pragma: no cover - compiled
    """out (P, 3, 3) = scale * (A + A^T), A = sum over endpoints e of sign_e * K(ends_e - x); xs is (3, P)."""
    n_pts = xs.shape[1]
    n_end = ends.shape[0]
    c1 = 1.0 - nu
    h = 0.5 * c1 * a2
    n_blocks = (n_pts + BLOCK - 1) // BLOCK
    for ib in prange(n_blocks):
        p0 = ib * BLOCK
        n = min(BLOCK, n_pts - p0)
        px = xs[0, p0 : p0 + n].copy()
        py = xs[1, p0 : p0 + n].copy()
        pz = xs[2, p0 : p0 + n].copy()
        sxx = np.zeros(n)
        syy = np.zeros(n)
        szz = np.zeros(n)
        sxy = np.zeros(n)
        sxz = np.zeros(n)
        syz = np.zeros(n)
        for e in range(n_end):
            exx, eyy, ezz = ends[e, 0], ends[e, 1], ends[e, 2]
            tx, ty, tz = t[e, 0], t[e, 1], t[e, 2]
            bx, by, bz = b[e, 0], b[e, 1], b[e, 2]
            btx, bty, btz = bt[e, 0], bt[e, 1], bt[e, 2]
            s2 = 2.0 * sign[e]
            for i in range(n):
                rx = exx - px[i]
                ry = eyy - py[i]
                rz = ezz - pz[i]
                rt = rx * tx + ry * ty + rz * tz
                hx = rx - rt * tx
                hy = ry - rt * ty
                hz = rz - rt * tz
                q = hx * hx + hy * hy + hz * hz + a2
                ra2 = q + rt * rt
                ra = math.sqrt(ra2)
                den = max(ra - rt, _TINY)
                yat = ra + rt if rt > 0.0 else q / den
                inv_y = 1.0 / (q + yat * yat)
                inv_ra2 = 1.0 / ra2
                inv_yat = 1.0 / yat
                f1s = s2 * inv_y
                fb = -f1s * (rx * btx + ry * bty + rz * btz)
                ca = f1s * c1 * (1.0 + a2 * inv_y)
                cab = ca + f1s * h * inv_ra2
                cra = ca * ra
                cr = -fb * inv_yat
                ctt = -0.5 * fb * ra * inv_yat
                crr2 = -2.0 * fb * (ra + yat) * inv_y / ra
                ux = cab * (by * rz - bz * ry) + cra * btx + cr * rx + ctt * tx
                uy = cab * (bz * rx - bx * rz) + cra * bty + cr * ry + ctt * ty
                uz = cab * (bx * ry - by * rx) + cra * btz + cr * rz + ctt * tz
                gx = f1s * (hx + yat * tx)
                gy = f1s * (hy + yat * ty)
                gz = f1s * (hz + yat * tz)
                d2 = -fb * (1.0 + 2.0 * a2 * inv_y + a2 * inv_ra2)
                sxx[i] += 2.0 * (tx * ux - gx * btx) + crr2 * rx * rx + d2
                syy[i] += 2.0 * (ty * uy - gy * bty) + crr2 * ry * ry + d2
                szz[i] += 2.0 * (tz * uz - gz * btz) + crr2 * rz * rz + d2
                sxy[i] += tx * uy + ty * ux - gx * bty - gy * btx + crr2 * rx * ry
                sxz[i] += tx * uz + tz * ux - gx * btz - gz * btx + crr2 * rx * rz
                syz[i] += ty * uz + tz * uy - gy * btz - gz * bty + crr2 * ry * rz
        for i in range(n):
            p = p0 + i
            out[p, 0, 0] = scale * sxx[i]
            out[p, 1, 1] = scale * syy[i]
            out[p, 2, 2] = scale * szz[i]
            out[p, 0, 1] = scale * sxy[i]
            out[p, 1, 0] = scale * sxy[i]
            out[p, 0, 2] = scale * sxz[i]
            out[p, 2, 0] = scale * sxz[i]
            out[p, 1, 2] = scale * syz[i]
            out[p, 2, 1] = scale * syz[i]


def endpoint_stress(x: np.ndarray, ends: np.ndarray, sign: np.ndarray, t: np.ndarray, b: np.ndarray, bt: np.ndarray,
                    nu: float, a2: float, scale: float, threads: int | None = None) -> np.ndarray:
    """Stress (P, 3, 3) = scale * (A + A^T) of signed endpoint terms, units of ``scale``; inputs already checked.

    ``x`` (P, 3) points, ``ends``/``t``/``b``/``bt`` (E, 3) endpoint, unit tangent, Burgers vector and b x t,
    ``sign`` (E,) +-1, ``a2`` core width squared (same length unit), ``threads`` numba threads (None: all).
    """
    if threads is not None and not 1 <= int(threads) <= numba.config.NUMBA_NUM_THREADS:
        raise ValueError(f"threads={threads} not allowed: 1 <= threads <= {numba.config.NUMBA_NUM_THREADS}")
    out = np.zeros((len(x), 3, 3))
    if len(x) == 0 or len(ends) == 0:
        return out
    args = (np.ascontiguousarray(x.T), np.ascontiguousarray(ends), np.ascontiguousarray(sign, dtype=np.float64),
            np.ascontiguousarray(t), np.ascontiguousarray(b), np.ascontiguousarray(bt), float(nu), float(a2),
            float(scale), out)
    if threads is None:
        _accumulate(*args)
        return out
    before = numba.get_num_threads()
    numba.set_num_threads(int(threads))
    try:
        _accumulate(*args)
    finally:
        numba.set_num_threads(before)
    return out
