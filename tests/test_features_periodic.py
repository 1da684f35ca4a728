"""Periodic image sums: infinite straight lines, 2D lattice sums of Hirth-Lothe fields, the cell
average from surface integrals, and convergence of the resolved shear stress with image count."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from features_helpers import CELL, dipole_frame

from dislomob.features.discretize import NodeLine, discretize_line, gauss_points
from dislomob.features.periodic import mean_image_stress, network_stress

MU, NU, A = 82.0, 0.29, 2.5
B = 2.47
A_THIN = 0.5  # core width for comparisons with singular fields (field points > 10 A_THIN away)


def _straight(x0: float, z0: float, sign: float, cell=CELL, n: int = 4) -> NodeLine:
    nodes = np.array([x0, 0.0, z0]) + np.arange(n)[:, None] / n * cell[1]
    return NodeLine(nodes, np.array([sign * B, 0.0, 0.0]), cell[1].copy(), 1)


def _edge_2d(pts: np.ndarray, x0: float, z0: float, sign: float) -> np.ndarray:
    """Hirth-Lothe edge along +y with b = sign*B*x_hat, in the x-z plane (frame x, z, line y)."""
    x, z = pts[:, 0] - x0, pts[:, 2] - z0
    r2 = x * x + z * z
    # H&L with line along +y: rotate (x, y_HL, z_HL=line) -> use coordinates (x, -z) so the frame is right-handed
    y = -z
    d = MU * sign * B / (2 * np.pi * (1 - NU))
    sxx = -d * y * (3 * x * x + y * y) / r2**2
    syy = d * y * (x * x - y * y) / r2**2
    sxy = d * x * (x * x - y * y) / r2**2
    out = np.zeros((len(pts), 3, 3))
    out[:, 0, 0], out[:, 2, 2], out[:, 0, 2] = sxx, syy, -sxy
    out[:, 2, 0] = -sxy
    out[:, 1, 1] = NU * (sxx + syy)
    return out


def test_straight_periodic_line_without_lateral_images_is_the_infinite_edge():
    cell = np.diag([30.0, 21.0, 60.0])
    pts = np.array([[20.0, 3.0, 40.0], [2.0, 17.0, 5.0], [28.0, 10.0, 22.0]])
    got = network_stress(pts, [_straight(10.0, 30.0, 1.0, cell)], cell, MU, NU, A_THIN, images=0, line_images=1)
    want = _edge_2d(pts, 10.0, 30.0, 1.0)
    scale = MU * B / (2 * np.pi * (1 - NU) * 10.0)
    assert np.max(np.abs(got - want)) < 0.01 * scale


def test_dipole_image_sum_equals_the_2d_lattice_sum_of_hirth_lothe_fields():
    cell = np.diag([30.0, 21.0, 60.0])
    lines = [_straight(8.0, 15.0, 1.0, cell), _straight(23.0, 45.0, -1.0, cell)]
    pts = np.array([[15.0, 4.0, 30.0], [1.0, 11.0, 50.0], [26.0, 0.0, 3.0]])
    n = 2
    got = network_stress(pts, lines, cell, MU, NU, A_THIN, images=n, line_images=1)
    want = np.zeros_like(got)
    for i, k in itertools.product(range(-n, n + 1), repeat=2):
        shift = i * cell[0] + k * cell[2]
        want += _edge_2d(pts, 8.0 + shift[0], 15.0 + shift[2], 1.0) + _edge_2d(pts, 23.0 + shift[0], 45.0 + shift[2], -1.0)
    assert np.max(np.abs(got - want)) < 0.01 * np.max(np.abs(want))


def test_cell_average_from_surface_integrals_matches_volume_sampling():
    lines = [discretize_line(ln, CELL, 6.0, 4, 0) for ln in dipole_frame(0.0, 3.0).lines]
    images = 1
    mean = mean_image_stress(lines, CELL, MU, NU, A, images, line_images=1)
    n = (10, 7, 20)
    s = [(np.arange(k) + 0.5) / k for k in n]
    grid = np.stack(np.meshgrid(*s, indexing="ij"), -1).reshape(-1, 3) @ CELL
    sampled = network_stress(grid, lines, CELL, MU, NU, A, images, line_images=1).mean(axis=0)
    assert np.max(np.abs(mean)) > 0.3  # GPa: the spurious average of a small cell is large
    assert np.max(np.abs(mean - sampled)) < 0.03 * np.max(np.abs(mean))


def _rss_at_gps(lines, images: int, remove_mean: bool) -> np.ndarray:
    normal = np.array([0.0, 0.0, 1.0])
    pts, bh = [], []
    for ln in lines:
        s, e, _ = ln.segment_ends()
        g = gauss_points(s, e, 2)
        pts.append(g.pos)
        bh.append(np.tile(ln.burgers / np.linalg.norm(ln.burgers), (len(g.pos), 1)))
    pts, bh = np.vstack(pts), np.vstack(bh)
    sig = network_stress(pts, lines, CELL, MU, NU, A, images, line_images=2)
    if remove_mean:
        sig -= mean_image_stress(lines, CELL, MU, NU, A, images, line_images=2)
    return np.einsum("pi,pij,j->p", bh, sig, normal)


@pytest.mark.parametrize("remove_mean", [True, False])
def test_default_four_images_converged_to_one_percent_of_resolved_shear(remove_mean):
    lines = [discretize_line(ln, CELL, 6.0, 4, 0) for ln in dipole_frame(0.0, 4.0, amp=1.5).lines]
    rss4, rss5 = _rss_at_gps(lines, 4, remove_mean), _rss_at_gps(lines, 5, remove_mean)
    assert np.max(np.abs(rss5 - rss4)) < 0.01 * np.max(np.abs(rss4))
    rss1 = _rss_at_gps(lines, 1, remove_mean)
    assert np.max(np.abs(rss1 - rss4)) > np.max(np.abs(rss5 - rss4))  # and the test can tell
