"""Resampling DXA lines into nodes and Gauss points: topology, closure, spacing, smoothing."""

from __future__ import annotations

import numpy as np
import pytest
from features_helpers import CELL, wavy_line

from dislomob.features.discretize import (
    DiscretizationError, closed_polyline, discretize_line, gauss_points, resample, smooth,
)
from dislomob.md.trajectory import Line


def test_periodic_line_resampled_evenly_with_closure_through_the_cell():
    ln = discretize_line(wavy_line(5.0, 10.0, 1.0, amp=0.0), CELL, spacing=5.0, min_nodes=3, smoothing_passes=0)
    period = np.linalg.norm(CELL[1])
    assert ln.period_axis == 1 and np.allclose(ln.period, CELL[1])
    assert ln.n_nodes == round(period / 5.0)
    s, e, shifts = ln.segment_ends()
    lengths = np.linalg.norm(e - s, axis=1)
    assert np.allclose(lengths, period / ln.n_nodes)
    assert np.allclose(shifts[-1], CELL[1]) and np.allclose(shifts[:-1], 0)


def test_short_line_gets_the_minimum_node_count():
    ln = discretize_line(wavy_line(5.0, 10.0, 1.0), CELL, spacing=15.0, min_nodes=5, smoothing_passes=0)
    assert ln.n_nodes == 5


def test_closed_loop_drops_repeated_point_and_keeps_nodes_on_the_circle():
    th = np.linspace(0, 2 * np.pi, 41)
    pts = np.stack([20 * np.cos(th), 20 * np.sin(th), np.zeros_like(th)], axis=1)
    raw, period, axis = closed_polyline(Line(pts, np.ones(3), np.ones(3), True, False), CELL)
    assert len(raw) == 40 and axis is None and np.allclose(period, 0)
    nodes = resample(raw, period, spacing=10.0, min_nodes=4)
    assert len(nodes) == round(40 * 2 * 20 * np.sin(np.pi / 40) / 10.0)
    assert np.allclose(np.linalg.norm(nodes[:, :2], axis=1), 20.0, rtol=1 - np.cos(np.pi / 40) + 1e-9)  # within the polygon sagitta


def test_unresolvable_periodic_closure_is_an_error_naming_the_vector():
    ln = wavy_line(5.0, 10.0, 1.0)
    bad = Line(ln.points[:-1].copy(), ln.true_burgers, ln.spatial_burgers, True, True)  # ends short of the period
    with pytest.raises(DiscretizationError, match="not a lattice vector"):
        closed_polyline(bad, CELL)
    twice = Line(np.vstack([ln.points, ln.points[1:] + CELL[1]]), ln.true_burgers, ln.spatial_burgers, True, True)
    with pytest.raises(DiscretizationError, match=r"\[0, 2, 0\] cell rows"):
        closed_polyline(twice, CELL)


def test_open_line_is_rejected():
    with pytest.raises(DiscretizationError, match="dangling ends"):
        closed_polyline(Line(np.eye(3), np.ones(3), np.ones(3), False, False), CELL)


def test_smoothing_is_off_by_default_and_damps_zigzag_noise():
    ln = wavy_line(5.0, 10.0, 1.0, amp=0.0, n=20)
    pts, period, _ = closed_polyline(ln, CELL)
    noisy = pts + np.outer((-1.0) ** np.arange(len(pts)), [0.5, 0, 0])
    assert np.array_equal(smooth(noisy, period, 0), noisy)
    once = smooth(noisy, period, 1)
    assert np.max(np.abs(once[:, 0] - pts[:, 0])) < 1e-12  # the zigzag is the binomial filter's null mode
    with pytest.raises(ValueError, match="passes=-1"):
        smooth(noisy, period, -1)


@pytest.mark.parametrize("n_gauss", [1, 2, 3])
def test_gauss_points_integrate_polynomials_exactly(n_gauss):
    starts = np.array([[0.0, 0, 0], [1.0, 2.0, 3.0]])
    ends = np.array([[2.0, 0, 0], [4.0, 6.0, 3.0]])
    gp = gauss_points(starts, ends, n_gauss)
    assert gp.pos.shape == (2 * n_gauss, 3) and list(gp.segment) == [0] * n_gauss + [1] * n_gauss
    lengths = np.linalg.norm(ends - starts, axis=1)
    assert np.allclose(np.bincount(gp.segment, gp.weight), lengths)
    deg = 2 * n_gauss - 1  # integral over the segment of u^deg, u the arc-length fraction
    u = np.linalg.norm(gp.pos - starts[gp.segment], axis=1) / lengths[gp.segment]
    assert np.allclose(np.bincount(gp.segment, gp.weight * u**deg), lengths / (deg + 1))
