"""Compiled segment-stress kernel against the numpy reference of the same formula: random, near-core and
near-parallel configurations, block edges, semi-infinite segments, periodic networks, threads."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from dislomob.features.discretize import NodeLine
from dislomob.features.periodic import line_sources, network_stress
from dislomob.features.stress import _kernel as _reference_kernel
from dislomob.features.stress import (
    segment_stress,
    segment_stress_reference,
    semi_infinite_stress,
    semi_infinite_stress_reference,
)
from dislomob.features.stress_kernel import BLOCK

MU, NU = 82.0, 0.29
TOL = 1e-10


def _rel_err(got: np.ndarray, want: np.ndarray) -> float:
    """Largest difference at a point relative to the largest stress component at that point."""
    scale = np.max(np.abs(want), axis=(1, 2))
    assert np.all(scale > 0)
    return float(np.max(np.max(np.abs(got - want), axis=(1, 2)) / scale))


def _term_rel_err(pts: np.ndarray, got: np.ndarray, want: np.ndarray, s0: np.ndarray, s1: np.ndarray,
                  b: np.ndarray, a: float) -> float:
    """Largest difference at a point relative to the sum of |endpoint terms| there (the formula's condition).

    A segment's field is K(P1 - x) - K(P0 - x), i.e. the difference of two semi-infinite segments; far from a
    short segment (or along the axis of near-parallel ones) the two cancel to many digits, so any float64
    evaluation, the reference included, is only accurate to ~1e-16 of the terms, not of their sum.
    """
    d = s1 - s0
    terms = np.zeros_like(want)
    for i in range(len(s0)):
        for p in (s0, s1):
            terms += np.abs(semi_infinite_stress_reference(pts, p[i : i + 1], d[i : i + 1], b[i : i + 1], MU, NU, a))
    return float(np.max(np.max(np.abs(got - want), axis=(1, 2)) / np.max(terms, axis=(1, 2))))


def _random_segments(rng: np.random.Generator, n: int, spread: float, length: float):
    s0 = rng.normal(size=(n, 3)) * spread
    s1 = s0 + rng.normal(size=(n, 3)) * length
    return s0, s1, rng.normal(size=(n, 3))


@pytest.mark.parametrize("a", [0.3, 2.5])
def test_random_segments_match_the_reference(a):
    rng = np.random.default_rng(11)
    s0, s1, b = _random_segments(rng, 37, 20.0, 8.0)
    pts = rng.normal(size=(150, 3)) * 20.0
    got = segment_stress(pts, s0, s1, b, MU, NU, a)
    assert _rel_err(got, segment_stress_reference(pts, s0, s1, b, MU, NU, a)) < TOL
    assert np.array_equal(got, np.swapaxes(got, 1, 2))


def test_points_in_and_near_the_core_match_the_reference():
    # points on the segments' lines (inside, at and beyond the endpoints) and within a core width of them
    rng = np.random.default_rng(12)
    s0, s1, b = _random_segments(rng, 9, 10.0, 6.0)
    u = np.linspace(-1.5, 2.5, 41)
    on_line = (s0[:, None] + u[None, :, None] * (s1 - s0)[:, None]).reshape(-1, 3)
    near = on_line + rng.normal(size=on_line.shape) * 0.05
    pts = np.vstack([on_line, near, s0, s1])
    for a in (0.1, 1.0):
        got = segment_stress(pts, s0, s1, b, MU, NU, a)
        assert np.all(np.isfinite(got))
        assert _term_rel_err(pts, got, segment_stress_reference(pts, s0, s1, b, MU, NU, a), s0, s1, b, a) < TOL


def test_near_parallel_lines_far_along_their_axis_match_the_reference():
    # long nearly parallel segments, field points far behind/ahead on their axis: the r.t < 0 branch and the
    # cancellation between the two endpoint terms are the hard cases of the formula
    rng = np.random.default_rng(13)
    t = np.array([1.0, 1.0, -1.0]) / np.sqrt(3.0)
    n = 12
    tilt = t + rng.normal(size=(n, 3)) * 1e-7
    s0 = rng.normal(size=(n, 3)) * 3.0
    s1 = s0 + 40.0 * tilt
    b = np.tile([1.2, 1.2, -1.2], (n, 1))
    far = np.linspace(-5e3, 5e3, 61)[:, None] * t + rng.normal(size=(61, 3)) * 2.0
    parallel_line = np.linspace(-50.0, 90.0, 57)[:, None] * t + np.array([0.5, -0.5, 0.0])
    pts = np.vstack([far, parallel_line])
    got = segment_stress(pts, s0, s1, b, MU, NU, 1.0)
    ref = segment_stress_reference(pts, s0, s1, b, MU, NU, 1.0)
    assert _term_rel_err(pts, got, ref, s0, s1, b, 1.0) < TOL
    if np.finfo(np.longdouble).eps > 1e-17:
        pytest.skip("numpy's long double is plain double on this platform")
    # the kernel is as close as the reference to an extended-precision evaluation of the same formula
    exact = _extended_precision(pts, s0, s1, b, 1.0)
    err_got, err_ref = (np.max(np.abs(v - exact), axis=(1, 2)) for v in (got, ref))
    assert np.all(err_got <= 2.0 * err_ref + 1e-14 * np.max(np.abs(exact), axis=(1, 2)))


def _extended_precision(pts: np.ndarray, s0: np.ndarray, s1: np.ndarray, b: np.ndarray, a: float) -> np.ndarray:
    """The reference formula evaluated in numpy's long double (x87 80-bit on x86-64: 64-bit mantissa)."""
    ld = np.longdouble
    x, p0, p1, bb = (v.astype(ld) for v in (pts, s0, s1, b))
    d = p1 - p0
    t = d / np.sqrt((d * d).sum(axis=1))[:, None]
    bt = np.cross(bb, t)
    sign = np.concatenate([np.ones(len(p0)), -np.ones(len(p0))]).astype(ld)
    k = _reference_kernel(x, np.vstack([p1, p0]), sign, np.vstack([t, t]), np.vstack([bb, bb]), np.vstack([bt, bt]),
                          ld(NU), ld(a) * ld(a))
    return ((k + np.swapaxes(k, 1, 2)) * (ld(MU) / (4 * ld(np.pi) * (1 - ld(NU))))).astype(np.float64)


@pytest.mark.parametrize("n_pts", [1, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK + 5])
def test_point_counts_around_block_edges(n_pts):
    rng = np.random.default_rng(n_pts)
    s0, s1, b = _random_segments(rng, 5, 10.0, 4.0)
    pts = rng.normal(size=(n_pts, 3)) * 10.0
    got = segment_stress(pts, s0, s1, b, MU, NU, 1.0)
    assert got.shape == (n_pts, 3, 3)
    assert _rel_err(got, segment_stress_reference(pts, s0, s1, b, MU, NU, 1.0)) < TOL


def test_semi_infinite_segments_match_the_reference():
    rng = np.random.default_rng(14)
    starts, dirs, b = (rng.normal(size=(8, 3)) for _ in range(3))
    pts = np.vstack([rng.normal(size=(80, 3)) * 15.0, starts + 3.0 * dirs, starts - 3.0 * dirs])
    got = semi_infinite_stress(pts, starts, dirs, b, MU, NU, 1.0)
    assert _rel_err(got, semi_infinite_stress_reference(pts, starts, dirs, b, MU, NU, 1.0)) < TOL


def test_periodic_network_with_images_matches_the_reference_sum():
    cell = np.diag([60.0, 50.0, 40.0])
    y = np.linspace(0.0, 50.0, 10, endpoint=False)
    wavy = np.stack([10.0 + 2.0 * np.sin(2 * np.pi * y / 50.0), y, np.full_like(y, 20.0)], axis=1)
    th = np.linspace(0.0, 2 * np.pi, 12, endpoint=False)
    loop = np.stack([30 + 8 * np.cos(th), 25 + 8 * np.sin(th), np.full_like(th, 10.0)], axis=1)
    lines = [NodeLine(wavy, np.array([2.5, 0.0, 0.0]), cell[1].copy(), 1),
             NodeLine(loop, np.array([0.0, 0.0, 2.5]), np.zeros(3), None)]
    pts = np.random.default_rng(15).uniform(0.0, 40.0, size=(70, 3))
    got = network_stress(pts, lines, cell, MU, NU, 2.5, images=2, line_images=2)
    want = np.zeros_like(got)
    for ln in lines:
        s, e, b, ts, td, tb = line_sources(ln, cell, 2, 2)
        want += segment_stress_reference(pts, s, e, b, MU, NU, 2.5)
        if len(ts):
            want += semi_infinite_stress_reference(pts, ts, td, tb, MU, NU, 2.5)
    assert _rel_err(got, want) < TOL


def test_thread_count_does_not_change_a_single_bit():
    rng = np.random.default_rng(16)
    s0, s1, b = _random_segments(rng, 30, 20.0, 5.0)
    pts = rng.normal(size=(5 * BLOCK + 3, 3)) * 20.0
    one = segment_stress(pts, s0, s1, b, MU, NU, 1.0, threads=1)
    assert np.array_equal(one, segment_stress(pts, s0, s1, b, MU, NU, 1.0, threads=numba.config.NUMBA_NUM_THREADS))
    assert np.array_equal(one, segment_stress(pts, s0, s1, b, MU, NU, 1.0))


@pytest.mark.parametrize("threads", [0, -1, 10**6])
def test_bad_thread_count_is_named(threads):
    with pytest.raises(ValueError, match=f"threads={threads}"):
        segment_stress(np.zeros((1, 3)), [[0, 0, 0]], [[0, 0, 1]], [[1, 0, 0]], MU, NU, 1.0, threads=threads)


def test_empty_inputs_give_zero_stress():
    assert segment_stress(np.zeros((0, 3)), [[0, 0, 0]], [[0, 0, 1]], [[1, 0, 0]], MU, NU, 1.0).shape == (0, 3, 3)
    got = segment_stress(np.ones((4, 3)), np.zeros((0, 3)), np.zeros((0, 3)), np.zeros((0, 3)), MU, NU, 1.0)
    assert np.array_equal(got, np.zeros((4, 3, 3)))
