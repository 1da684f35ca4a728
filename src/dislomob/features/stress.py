"""Non-singular isotropic elastic stress of straight dislocation segments, vectorized.

Cai, Arsenlis, Weinberger & Bulatov, J. Mech. Phys. Solids 54 (2006) 561: the Burgers vector is
spread with a core width ``a`` so that the field is finite everywhere. For a segment from P0 to P1
(unit tangent t, Burgers vector b) the stress at x is

    sigma(x) = mu / (4 pi (1 - nu)) * (T + T^T),   T = K(P1 - x) - K(P0 - x),

where K(r) is the closed-form antiderivative of the line integral along t (written in the
"Y-vector" form, Po et al., MoDELib). Conventions: Hirth & Lothe (line sense t from P0 to P1,
FS/RH Burgers vector), tensile stress positive, so the Peach-Koehler force per length on a line
with sense xi and Burgers vector b is (sigma . b) x xi.

``segment_stress`` / ``semi_infinite_stress`` run the compiled kernel of
:mod:`dislomob.features.stress_kernel` (numba, all cores, no temporaries per pair). The numpy
versions ``segment_stress_reference`` / ``semi_infinite_stress_reference`` are the reference the
kernel is tested against: (points x segment endpoints) pairs in float64, structure-of-arrays form,
chunked so that at most ``max_pairs`` pairs are in flight (about 0.3 KiB of temporaries per pair,
so the default chunk stays in the L2 cache).
"""

from __future__ import annotations

import numpy as np

from dislomob.features.stress_kernel import endpoint_stress

DEFAULT_MAX_PAIRS = 1 << 13  # (point, endpoint) pairs per chunk: ~30 arrays of 64 KiB stay in L2


def _as_vectors(name: str, v: np.ndarray) -> np.ndarray:
    arr = np.asarray(v, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise ValueError(f"{name} must have shape (n, 3), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} holds non-finite values")
    return arr


def _check_material(mu: float, nu: float, a: float) -> None:
    if not mu > 0:
        raise ValueError(f"shear modulus mu={mu} not allowed: mu > 0")
    if not -1.0 < nu < 0.5:
        raise ValueError(f"Poisson ratio nu={nu} not allowed: -1 < nu < 0.5")
    if not a > 0:
        raise ValueError(f"core width a={a} not allowed: a > 0")


def _kernel(x: np.ndarray, ends: np.ndarray, sign: np.ndarray, t: np.ndarray, b: np.ndarray, bt: np.ndarray,
            nu: float, a2: float) -> np.ndarray:
    """A (P, 3, 3) = sum over endpoints e of sign_e * K(ends_e - x), unscaled; T = A, sigma ~ A + A^T.

    Structure of arrays: every intermediate is a (P, E) array of one scalar, so each numpy operation
    runs over contiguous memory; the sums over endpoints of t (x) u and Ya (x) (b x t) are matrix
    products (P, E) @ (E, 3).
    """
    c1 = 1.0 - nu
    rx = ends[:, 0][None, :] - x[:, 0][:, None]
    ry = ends[:, 1][None, :] - x[:, 1][:, None]
    rz = ends[:, 2][None, :] - x[:, 2][:, None]
    r = (rx, ry, rz)
    rt = rx * t[:, 0] + ry * t[:, 1] + rz * t[:, 2]
    rho = (rx - rt * t[:, 0], ry - rt * t[:, 1], rz - rt * t[:, 2])
    q = rho[0] * rho[0] + rho[1] * rho[1] + rho[2] * rho[2] + a2  # rho^2 + a^2
    ra2 = q + rt * rt
    ra = np.sqrt(ra2)
    # Ya.t = Ra + r.t without cancellation where r points against t
    yat = np.where(rt > 0.0, ra + rt, q / np.maximum(ra - rt, np.finfo(float).tiny))
    inv_y = 1.0 / (q + yat * yat)  # 1 / (|Ya|^2 + a^2)
    inv_ra2 = 1.0 / ra2
    inv_yat = 1.0 / yat
    f1s = (2.0 * sign) * inv_y
    # (b x Ya).t = (b x r).t = -r.(b x t)
    fb = -f1s * (rx * bt[:, 0] + ry * bt[:, 1] + rz * bt[:, 2])
    ca = f1s * c1 * (1.0 + a2 * inv_y)
    cab = ca + f1s * (0.5 * c1 * a2) * inv_ra2
    cra = ca * ra
    cr = -fb * inv_yat
    ctt = -0.5 * fb * ra * inv_yat
    crr = -fb * (ra + yat) * inv_y / ra
    bxr = (b[:, 1] * rz - b[:, 2] * ry, b[:, 2] * rx - b[:, 0] * rz, b[:, 0] * ry - b[:, 1] * rx)
    out = np.empty((x.shape[0], 3, 3))
    for k in range(3):
        # t (x) u, u = ca (b x Ya) + cb (b x r) + cr r + ctt t with b x Ya = b x r + Ra (b x t)
        u = cab * bxr[k] + cra * bt[:, k] + cr * r[k] + ctt * t[:, k]
        out[:, :, k] = u @ t
    for j in range(3):
        out[:, j, :] -= (f1s * (rho[j] + yat * t[:, j])) @ bt
    for j in range(3):
        cj = crr * r[j]
        for k in range(j, 3):
            v = (cj * r[k]).sum(axis=1)
            out[:, j, k] += v
            if k != j:
                out[:, k, j] += v
    diag = (-0.5 * fb * (1.0 + 2.0 * a2 * inv_y + a2 * inv_ra2)).sum(axis=1)
    for j in range(3):
        out[:, j, j] += diag
    return out


def _tangents(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    d = ends - starts
    length = np.linalg.norm(d, axis=1)
    bad = np.flatnonzero(length <= 0.0)
    if bad.size:
        raise ValueError(f"segment {int(bad[0])} has zero length (start = end = {starts[bad[0]].tolist()})")
    return d / length[:, None]


def segment_stress(
    points: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    burgers: np.ndarray,
    mu: float,
    nu: float,
    a: float,
    max_pairs: int = DEFAULT_MAX_PAIRS,
    threads: int | None = None,
) -> np.ndarray:
    """Stress (n_points, 3, 3) at ``points`` summed over straight segments starts->ends, units of ``mu``.

    Lengths (points, segment ends, Burgers vectors (n_seg, 3), core width ``a``) in any one unit.
    Non-singular isotropic theory of Cai et al. (2006), compiled kernel on ``threads`` threads (None: all
    cores); ``max_pairs`` (>= 1) only bounds the chunks of the numpy reference, the kernel needs no chunks.
    """
    return _stress(points, starts, ends, burgers, mu, nu, a, max_pairs, semi_infinite=False, threads=threads)


def segment_stress_reference(
    points: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    burgers: np.ndarray,
    mu: float,
    nu: float,
    a: float,
    max_pairs: int = DEFAULT_MAX_PAIRS,
) -> np.ndarray:
    """Numpy reference of :func:`segment_stress` (n_points, 3, 3), units of ``mu``; memory bounded by ``max_pairs``."""
    return _stress(points, starts, ends, burgers, mu, nu, a, max_pairs, semi_infinite=False, reference=True)


def semi_infinite_stress(
    points: np.ndarray,
    starts: np.ndarray,
    directions: np.ndarray,
    burgers: np.ndarray,
    mu: float,
    nu: float,
    a: float,
    max_pairs: int = DEFAULT_MAX_PAIRS,
    threads: int | None = None,
) -> np.ndarray:
    """Stress (n_points, 3, 3) of semi-infinite segments from ``starts`` to infinity along ``directions``.

    Same units, theory and threads as :func:`segment_stress`; K vanishes at +infinity along t, so
    T = -K(P0 - x). A line coming from -infinity into P is the segment from P along -t with Burgers vector -b.
    """
    return _stress(points, starts, directions, burgers, mu, nu, a, max_pairs, semi_infinite=True, threads=threads)


def semi_infinite_stress_reference(
    points: np.ndarray,
    starts: np.ndarray,
    directions: np.ndarray,
    burgers: np.ndarray,
    mu: float,
    nu: float,
    a: float,
    max_pairs: int = DEFAULT_MAX_PAIRS,
) -> np.ndarray:
    """Numpy reference of :func:`semi_infinite_stress` (n_points, 3, 3), units of ``mu``."""
    return _stress(points, starts, directions, burgers, mu, nu, a, max_pairs, semi_infinite=True, reference=True)


def _stress(points, starts, second, burgers, mu, nu, a, max_pairs, semi_infinite: bool, threads: int | None = None,
            reference: bool = False) -> np.ndarray:
    _check_material(mu, nu, a)
    if max_pairs < 1:
        raise ValueError(f"max_pairs={max_pairs} not allowed: >= 1")
    x = _as_vectors("points", points)
    p0 = _as_vectors("starts", starts)
    p1 = _as_vectors("directions" if semi_infinite else "ends", second)
    b = _as_vectors("burgers", burgers)
    if not (len(p0) == len(p1) == len(b)):
        raise ValueError(f"starts, ends/directions and burgers differ in length: {len(p0)}, {len(p1)}, {len(b)}")
    if semi_infinite:
        norm = np.linalg.norm(p1, axis=1)
        if np.any(norm <= 0):
            raise ValueError("a semi-infinite segment has a zero direction vector")
        t = p1 / norm[:, None]
    else:
        t = _tangents(p0, p1)
    bt = np.cross(b, t)
    if semi_infinite:
        ends, sign = p0, -np.ones(len(p0))
    else:
        ends, sign = np.vstack([p1, p0]), np.concatenate([np.ones(len(p0)), -np.ones(len(p0))])
        t, b, bt = np.vstack([t, t]), np.vstack([b, b]), np.vstack([bt, bt])
    a2 = float(a) * float(a)
    if not reference:
        return endpoint_stress(x, ends, sign, t, b, bt, nu, a2, mu / (4.0 * np.pi * (1.0 - nu)), threads)
    out = np.zeros((len(x), 3, 3))
    if len(x) == 0 or len(ends) == 0:
        return out
    end_chunk = min(len(ends), max_pairs)
    pt_chunk = max(1, max_pairs // end_chunk)
    for e0 in range(0, len(ends), end_chunk):
        sl = slice(e0, e0 + end_chunk)
        for q0 in range(0, len(x), pt_chunk):
            out[q0 : q0 + pt_chunk] += _kernel(x[q0 : q0 + pt_chunk], ends[sl], sign[sl], t[sl], b[sl], bt[sl], nu, a2)
    out += np.swapaxes(out, 1, 2).copy()
    out *= mu / (4.0 * np.pi * (1.0 - nu))
    return out
