"""Non-singular segment stress: analytic infinite lines, core regularity, superposition, loops,
equilibrium, and agreement with a scalar per-pair implementation of the same formula."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dislomob.features.stress import segment_stress, semi_infinite_stress

MU, NU, B = 1.0, 0.3, 1.0
LONG = 1.0e4


def _field_points(rng: np.random.Generator, n: int, r_min: float, r_max: float) -> np.ndarray:
    r = rng.uniform(r_min, r_max, n)
    th = rng.uniform(0, 2 * np.pi, n)
    return np.stack([r * np.cos(th), r * np.sin(th), rng.uniform(-5, 5, n)], axis=1)


def _infinite_z(points: np.ndarray, burgers, a: float) -> np.ndarray:
    return segment_stress(points, [[0, 0, -LONG]], [[0, 0, LONG]], [burgers], MU, NU, a)


def _rel_err(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.max(np.abs(got - want)) / np.max(np.abs(want)))


@pytest.mark.parametrize("a", [0.5, 2.0])
def test_long_segment_reproduces_singular_screw_beyond_ten_core_widths(a):
    pts = _field_points(np.random.default_rng(1), 40, 10 * a, 60 * a)
    x, y = pts[:, 0], pts[:, 1]
    r2 = x * x + y * y
    s = _infinite_z(pts, [0, 0, B], a)
    want_xz = -MU * B / (2 * np.pi) * y / r2
    want_yz = MU * B / (2 * np.pi) * x / r2
    for got, want in ((s[:, 0, 2], want_xz), (s[:, 1, 2], want_yz)):
        assert np.all(np.abs(got - want) <= 0.01 * np.abs(MU * B / (2 * np.pi * np.sqrt(r2))))
    others = s[:, [0, 0, 1, 2], [0, 1, 1, 2]]
    assert np.max(np.abs(others)) < 1e-6


@pytest.mark.parametrize("a", [0.5, 2.0])
def test_long_segment_reproduces_singular_edge_beyond_ten_core_widths(a):
    pts = _field_points(np.random.default_rng(2), 40, 10 * a, 60 * a)
    x, y = pts[:, 0], pts[:, 1]
    r2 = x * x + y * y
    d = MU * B / (2 * np.pi * (1 - NU))
    s = _infinite_z(pts, [B, 0, 0], a)
    scale = d / np.sqrt(r2)
    want = {
        (0, 0): -d * y * (3 * x * x + y * y) / r2**2,
        (1, 1): d * y * (x * x - y * y) / r2**2,
        (0, 1): d * x * (x * x - y * y) / r2**2,
    }
    for (i, j), w in want.items():
        assert np.all(np.abs(s[:, i, j] - w) <= 0.01 * scale), (i, j)
    assert np.allclose(s[:, 2, 2], NU * (s[:, 0, 0] + s[:, 1, 1]), atol=1e-4 * scale.max())
    assert np.max(np.abs(s[:, [0, 1], [2, 2]])) < 1e-6


def test_screw_matches_the_nonsingular_analytic_profile_through_the_core():
    # Cai et al. 2006: sigma_theta_z = mu b / (2 pi) * r (r^2 + 2 a^2) / (r^2 + a^2)^2
    a = 1.0
    r = np.linspace(0.0, 8.0, 81)
    pts = np.stack([r, np.zeros_like(r), np.zeros_like(r)], axis=1)
    s = _infinite_z(pts, [0, 0, B], a)
    want = MU * B / (2 * np.pi) * r * (r * r + 2 * a * a) / (r * r + a * a) ** 2
    assert np.allclose(s[:, 1, 2], want, rtol=1e-6, atol=1e-9)


def test_field_is_finite_and_smooth_across_the_core():
    a = 1.0
    u = np.linspace(-3.0, 3.0, 601)
    h = u[1] - u[0]
    pts = np.stack([u, 0.3 * u, np.full_like(u, 0.7)], axis=1)  # passes through the line at u=0
    pts[:, 2] = 0.0
    s = segment_stress(pts, [[0, 0, -30.0]], [[0, 0, 30.0]], [[0.6, 0.0, 0.8]], MU, NU, a)
    assert np.all(np.isfinite(s))
    peak = np.max(np.abs(s))
    assert peak < MU * B / a  # bounded by mu b / a, no 1/r blow-up
    second = np.abs(s[2:] - 2 * s[1:-1] + s[:-2]) / h**2
    assert np.max(second) < 10 * peak / a**2  # curvature set by the core width, not by the grid


def test_splitting_a_segment_is_exact_superposition():
    rng = np.random.default_rng(3)
    p0, p1 = rng.normal(size=3) * 20, rng.normal(size=3) * 20
    b = rng.normal(size=3)
    cuts = np.sort(rng.uniform(0, 1, 5))
    nodes = np.vstack([p0, p0 + cuts[:, None] * (p1 - p0), p1])
    pts = rng.normal(size=(30, 3)) * 15
    whole = segment_stress(pts, [p0], [p1], [b], MU, NU, 0.8)
    parts = segment_stress(pts, nodes[:-1], nodes[1:], np.tile(b, (len(nodes) - 1, 1)), MU, NU, 0.8)
    assert _rel_err(parts, whole) < 1e-10


def _circle(radius: float, n: int) -> np.ndarray:
    th = np.linspace(0.0, 2 * np.pi, n + 1)
    return np.stack([radius * np.cos(th), radius * np.sin(th), np.zeros_like(th)], axis=1)


def test_closed_loop_field_independent_of_discretization_and_matches_center_value():
    radius, a = 50.0, 0.5
    pts = np.array([[0.0, 0.0, 0.0], [10.0, -5.0, 3.0], [20.0, 20.0, -8.0], [80.0, 0.0, 10.0]])
    fields = []
    for n in (48, 96, 768):
        c = _circle(radius, n)
        fields.append(segment_stress(pts, c[:-1], c[1:], np.tile([B, 0, 0], (n, 1)), MU, NU, a))
    assert _rel_err(fields[0], fields[2]) < 0.01
    assert _rel_err(fields[1], fields[2]) < 0.01
    # Hirth & Lothe: shear stress at the centre of a circular glide loop (b in its plane)
    want = MU * B * (2 - NU) / (4 * (1 - NU) * radius)
    assert fields[2][0, 0, 2] == pytest.approx(want, rel=1e-3)


def test_closed_loop_field_is_divergence_free():
    c = _circle(40.0, 96)
    b = np.tile([0.3, 0.7, 0.2], (96, 1))
    x0 = np.array([[13.0, 7.0, 9.0], [-30.0, 20.0, -4.0]])
    h = 1e-3
    div = np.zeros((2, 3))
    for j in range(3):
        e = np.zeros(3)
        e[j] = h
        d = (segment_stress(x0 + e, c[:-1], c[1:], b, MU, NU, 1.0) - segment_stress(x0 - e, c[:-1], c[1:], b, MU, NU, 1.0)) / (2 * h)
        div += d[:, :, j]
    size = np.max(np.abs(segment_stress(x0, c[:-1], c[1:], b, MU, NU, 1.0)))
    assert np.max(np.abs(div)) < 1e-6 * size


def test_semi_infinite_pair_equals_a_very_long_segment():
    rng = np.random.default_rng(4)
    t = rng.normal(size=3)
    t /= np.linalg.norm(t)
    b = rng.normal(size=3)
    pts = rng.normal(size=(10, 3)) * 5
    tails = semi_infinite_stress(pts, [[0, 0, 0], [0, 0, 0]], [t, -t], [b, -b], MU, NU, 1.0)
    long = segment_stress(pts, [-1e4 * t], [1e4 * t], [b], MU, NU, 1.0)
    assert _rel_err(tails, long) < 1e-6


def test_chunking_does_not_change_the_result():
    rng = np.random.default_rng(5)
    s0, s1 = rng.normal(size=(17, 3)) * 10, rng.normal(size=(17, 3)) * 10
    b = rng.normal(size=(17, 3))
    pts = rng.normal(size=(23, 3)) * 10
    full = segment_stress(pts, s0, s1, b, MU, NU, 1.0)
    for max_pairs in (1, 5, 40, 17 * 23):
        assert _rel_err(segment_stress(pts, s0, s1, b, MU, NU, 1.0, max_pairs=max_pairs), full) < 1e-13


def _scalar_kernel(r, t, b, nu, a):
    """K(r) for one segment endpoint, with plain Python floats (Y-vector form, Cai et al. 2006)."""
    a2 = a * a

    def dot(u, v):
        return sum(ui * vi for ui, vi in zip(u, v))

    def cross(u, v):
        return [u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0]]

    ra2 = dot(r, r) + a2
    ra = math.sqrt(ra2)
    rt = dot(r, t)
    rho2 = dot(cross(r, t), cross(r, t))
    # Ya.t = Ra + r.t, rewritten as (rho^2 + a^2) / (Ra - r.t) where r points against t (no cancellation)
    yat = ra + rt if rt > 0 else (rho2 + a2) / (ra - rt)
    ya = [r[i] - rt * t[i] + yat * t[i] for i in range(3)]
    ya2a2 = dot(ya, ya) + a2
    bya = cross(b, ya)
    byat = dot(bya, t)
    bxr = cross(b, r)
    bxt = cross(b, t)
    f1 = 2.0 / ya2a2
    c1 = 1.0 - nu
    k = [[0.0] * 3 for _ in range(3)]
    for i in range(3):
        for j in range(3):
            k[i][j] = (
                f1 * c1 * (1.0 + a2 / ya2a2) * t[i] * bya[j]
                + f1 * c1 * 0.5 * a2 / ra2 * t[i] * bxr[j]
                - f1 * ya[i] * bxt[j]
                - f1 * byat / yat * t[i] * r[j]
                - 0.5 * f1 * byat * (1.0 + 2.0 * a2 / ya2a2 + a2 / ra2) * (1.0 if i == j else 0.0)
                - f1 * byat * (ra + yat) / ra / ya2a2 * r[i] * r[j]
                - 0.5 * f1 * byat * ra / yat * t[i] * t[j]
            )
    return k


def _scalar_stress(x, p0, p1, b, mu, nu, a):
    d = [p1[i] - p0[i] for i in range(3)]
    length = math.sqrt(sum(v * v for v in d))
    t = [v / length for v in d]
    k1 = _scalar_kernel([p1[i] - x[i] for i in range(3)], t, b, nu, a)
    k0 = _scalar_kernel([p0[i] - x[i] for i in range(3)], t, b, nu, a)
    c = mu / (4.0 * math.pi * (1.0 - nu))
    tmat = [[k1[i][j] - k0[i][j] for j in range(3)] for i in range(3)]
    return [[c * (tmat[i][j] + tmat[j][i]) for j in range(3)] for i in range(3)]


def test_agrees_with_scalar_per_pair_implementation_on_random_segments():
    rng = np.random.default_rng(6)
    n_seg, n_pts = 12, 9
    s0 = rng.normal(size=(n_seg, 3)) * 10
    s1 = s0 + rng.normal(size=(n_seg, 3)) * 6
    b = rng.normal(size=(n_seg, 3))
    pts = rng.normal(size=(n_pts, 3)) * 10
    mu, nu, a = 82.0, 0.29, 0.7
    got = segment_stress(pts, s0, s1, b, mu, nu, a)
    for p in range(n_pts):
        want = np.zeros((3, 3))
        for s in range(n_seg):
            want += np.array(_scalar_stress(pts[p].tolist(), s0[s].tolist(), s1[s].tolist(), b[s].tolist(), mu, nu, a))
        assert np.max(np.abs(got[p] - want)) <= 1e-10 * np.max(np.abs(want))


def test_stress_scales_with_mu_and_is_linear_in_burgers():
    rng = np.random.default_rng(7)
    s0, s1 = rng.normal(size=(4, 3)) * 10, rng.normal(size=(4, 3)) * 10
    b1, b2 = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    pts = rng.normal(size=(6, 3)) * 10
    f = lambda b, mu: segment_stress(pts, s0, s1, b, mu, NU, 1.0)  # noqa: E731
    assert _rel_err(f(b1 + 2 * b2, 1.0), f(b1, 1.0) + 2 * f(b2, 1.0)) < 1e-12
    assert _rel_err(f(b1, 82.0), 82.0 * f(b1, 1.0)) < 1e-12


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"nu": 0.5}, "Poisson ratio nu=0.5"),
        ({"mu": -1.0}, "shear modulus mu=-1.0"),
        ({"a": 0.0}, "core width a=0.0"),
        ({"ends": [[0.0, 0.0, 0.0]]}, "segment 0 has zero length"),
        ({"points": [[0.0, 0.0]]}, r"points must have shape \(n, 3\)"),
        ({"burgers": [[1.0, 0, 0], [1.0, 0, 0]]}, "differ in length"),
    ],
)
def test_bad_inputs_are_named(kwargs, match):
    args = {"points": [[1.0, 0, 0]], "starts": [[0.0, 0, 0]], "ends": [[0.0, 0, 1]], "burgers": [[1.0, 0, 0]],
            "mu": 1.0, "nu": 0.3, "a": 1.0}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        segment_stress(**args)
