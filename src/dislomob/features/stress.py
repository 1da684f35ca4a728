"""Non-singular isotropic elastic stress of straight dislocation segments, vectorized.

Cai, Arsenlis, Weinberger & Bulatov, J. Mech. Phys. Solids 54 (2006) 561: the Burgers vector is
spread with a core width ``a`` so that the field is finite everywhere. For a segment from P0 to P1
(unit tangent t, Burgers vector b) the stress at x is

    sigma(x) = mu / (4 pi (1 - nu)) * (T + T^T),   T = K(P1 - x) - K(P0 - x),

where K(r) is the closed-form antiderivative of the line integral along t (written in the
"Y-vector" form, Po et al., MoDELib). Conventions: Hirth & Lothe (line sense t from P0 to P1,
FS/RH Burgers vector), tensile stress positive, so the Peach-Koehler force per length on a line
with sense xi and Burgers vector b is (sigma . b) x xi.

Everything is evaluated for (points x segments) pairs in float64 with numpy, chunked so that at
most ``max_pairs`` pairs are in flight (about 1 KiB per pair of temporaries).
"""

from __future__ import annotations

import numpy as np

DEFAULT_MAX_PAIRS = 1 << 16


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


def _kernel(r: np.ndarray, t: np.ndarray, bt: np.ndarray, b: np.ndarray, nu: float, a2: float) -> np.ndarray:
    """Sum over segments of K(r) for r (P, S, 3) = endpoint - field point; returns (P, 3, 3), unscaled."""
    c1 = 1.0 - nu
    rt = np.einsum("psk,sk->ps", r, t)
    rho = r - rt[..., None] * t[None]
    rho2 = np.einsum("psk,psk->ps", rho, rho)
    ra2 = rho2 + rt * rt + a2
    ra = np.sqrt(ra2)
    # Yat = Ra + r.t without cancellation where r points against t
    yat = np.where(rt > 0.0, ra + rt, (rho2 + a2) / np.maximum(ra - rt, np.finfo(float).tiny))
    ya2a2 = rho2 + yat * yat + a2
    f1 = 2.0 / ya2a2
    # (b x Ya).t = (b x r).t = -r.(b x t)
    bxr = np.cross(b[None], r)
    byat = -np.einsum("psk,sk->ps", r, bt)
    ca = f1 * c1 * (1.0 + a2 / ya2a2)
    cb = f1 * c1 * 0.5 * a2 / ra2
    cr = -f1 * byat / yat
    ci = -0.5 * f1 * byat * (1.0 + 2.0 * a2 / ya2a2 + a2 / ra2)
    crr = -f1 * byat * (ra + yat) / (ra * ya2a2)
    ctt = -0.5 * f1 * byat * ra / yat
    # terms t (x) u with u = ca (b x Ya) + cb (b x r) + cr r + ctt t, and b x Ya = b x r + Ra (b x t)
    u = (ca + cb)[..., None] * bxr + (ca * ra)[..., None] * bt[None] + cr[..., None] * r + ctt[..., None] * t[None]
    out = np.einsum("sj,psk->pjk", t, u)
    ya = rho + yat[..., None] * t[None]
    out -= np.einsum("psj,sk->pjk", f1[..., None] * ya, bt)
    out += np.einsum("psj,psk->pjk", crr[..., None] * r, r)
    idx = np.arange(3)
    out[:, idx, idx] += ci.sum(axis=1)[:, None]
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
) -> np.ndarray:
    """Stress (n_points, 3, 3) at ``points`` summed over straight segments starts->ends, units of ``mu``.

    Lengths (points, segment ends, Burgers vectors (n_seg, 3), core width ``a``) in any one unit.
    Non-singular isotropic theory of Cai et al. (2006); memory is bounded by ``max_pairs`` pairs.
    """
    return _stress(points, starts, ends, burgers, mu, nu, a, max_pairs, semi_infinite=False)


def semi_infinite_stress(
    points: np.ndarray,
    starts: np.ndarray,
    directions: np.ndarray,
    burgers: np.ndarray,
    mu: float,
    nu: float,
    a: float,
    max_pairs: int = DEFAULT_MAX_PAIRS,
) -> np.ndarray:
    """Stress (n_points, 3, 3) of semi-infinite segments from ``starts`` to infinity along ``directions``.

    Same units and theory as :func:`segment_stress`; K vanishes at +infinity along t, so T = -K(P0 - x).
    A line coming from -infinity into P is the segment from P along -t with Burgers vector -b.
    """
    return _stress(points, starts, directions, burgers, mu, nu, a, max_pairs, semi_infinite=True)


def _stress(points, starts, second, burgers, mu, nu, a, max_pairs, semi_infinite: bool) -> np.ndarray:
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
    a2 = float(a) * float(a)
    out = np.zeros((len(x), 3, 3))
    if len(x) == 0 or len(p0) == 0:
        return out
    seg_chunk = min(len(p0), max_pairs)
    pt_chunk = max(1, max_pairs // seg_chunk)
    for s0 in range(0, len(p0), seg_chunk):
        sl = slice(s0, s0 + seg_chunk)
        ts, bts, bs, p0s, p1s = t[sl], bt[sl], b[sl], p0[sl], p1[sl]
        for q0 in range(0, len(x), pt_chunk):
            xq = x[q0 : q0 + pt_chunk, None, :]
            acc = -_kernel(p0s[None] - xq, ts, bts, bs, nu, a2)
            if not semi_infinite:
                acc += _kernel(p1s[None] - xq, ts, bts, bs, nu, a2)
            out[q0 : q0 + pt_chunk] += acc
    out += np.swapaxes(out, 1, 2).copy()
    out *= mu / (4.0 * np.pi * (1.0 - nu))
    return out
