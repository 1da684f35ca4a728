import math

import numpy as np
import pytest

from dislomob.md.elastic import dipole_passing_stress, path_angle, row_resolved_shear

MU, NU, B = 82.0, 0.29, 2.4727


@pytest.mark.parametrize("h", [20.0, 40.0, 80.0])
def test_isolated_pair_passing_stress_matches_analytic(h):
    # Rows spaced far apart behave like a single pair: edge mu b / (8 pi (1-nu) h), screw mu b / (4 pi h).
    x = np.linspace(-20 * h, 20 * h, 80001)
    edge = np.abs(row_resolved_shear(x, h, 1e6, B, math.pi / 2, MU, NU)).max()
    screw = np.abs(row_resolved_shear(x, h, 1e6, B, 0.0, MU, NU)).max()
    assert edge == pytest.approx(MU * B / (8 * math.pi * (1 - NU) * h), rel=1e-3)
    assert screw == pytest.approx(MU * B / (4 * math.pi * h), rel=1e-3)


def test_row_sum_equals_direct_sum_of_images():
    x = np.linspace(1.0, 39.0, 7)
    z, d = 15.0, 40.0
    xx = x[:, None] + d * np.arange(-200000, 200001)[None, :]
    r2 = xx**2 + z**2
    direct = (MU * B / (2 * math.pi) * (0.5 / (1 - NU) * xx * (xx**2 - z**2) / r2**2 + 0.5 * xx / r2)).sum(1)
    closed = row_resolved_shear(x, z, d, B, math.pi / 4, MU, NU)
    assert np.allclose(closed, direct, rtol=1e-4, atol=2e-5)  # direct sum truncated at 2e5 images: tail ~ 1e-5


def test_periodic_dipole_passing_stress_falls_with_height():
    values = [dipole_passing_stress(40.0, lz, lz / 2, B, math.pi / 2, MU, NU) for lz in (80.0, 120.0, 160.0)]
    assert values[0] > values[1] > values[2] > 0


def test_path_angle_jumps_by_two_pi_across_the_cut():
    path = np.array([[0.0, 0.0], [0.0, 5.0], [10.0, 5.0], [10.0, 10.0]])
    eps = 1e-6
    # crossing the first vertical segment left -> right, the horizontal one below -> above
    left, right = path_angle(np.array([-eps]), np.array([2.0]), path), path_angle(np.array([eps]), np.array([2.0]), path)
    below, above = path_angle(np.array([5.0]), np.array([5 - eps]), path), path_angle(np.array([5.0]), np.array([5 + eps]), path)
    assert (right - left)[0] == pytest.approx(-2 * math.pi, abs=1e-4)
    assert (above - below)[0] == pytest.approx(2 * math.pi, abs=1e-4)
    # far away and away from the cut, no jump
    assert abs(path_angle(np.array([-50.0]), np.array([2.0]), path)[0] - path_angle(np.array([-50.0]), np.array([2.1]), path)[0]) < 1e-2


def test_dxa_window_keeps_slabs_around_planes_with_minimum_image():
    from dislomob.md.run import dxa_window

    cell = np.diag([10.0, 10.0, 100.0])
    z = np.linspace(0.0, 99.9, 1000)
    pos = np.stack([np.zeros_like(z), np.zeros_like(z), z], 1)
    kept = dxa_window(pos, cell, [5.0, 50.0], 10.0)[:, 2]
    near = lambda v, c: abs((v - c + 50.0) % 100.0 - 50.0) < 10.0  # noqa: E731
    assert all(near(v, 5.0) or near(v, 50.0) for v in kept)
    assert kept.min() < 1.0 and kept.max() > 95.0  # the slab around z=5 wraps through z=0
    assert len(kept) == pytest.approx(400, abs=2)
    assert len(dxa_window(pos, cell, [5.0], 0.0)) == len(pos)
