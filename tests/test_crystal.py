import math

import numpy as np
import pytest

from dislomob.md.crystal import BURGERS, available_orientations, character_angle, lattice_period, nearest_orientation
from dislomob.md.lattice import bcc_positions, box_lengths

A = 2.8553


def test_at_least_13_characters_from_screw_to_screw():
    angles = [o.angle_deg for o in available_orientations()]
    assert len(angles) >= 13
    assert angles[0] == pytest.approx(0.0, abs=1e-6) and angles[-1] == pytest.approx(180.0, abs=1e-6)
    assert any(abs(a - 90.0) < 1e-6 for a in angles)
    for expect in (15.8, 19.5, 35.3, 54.7, 70.5, 109.5, 125.3, 144.7, 160.5, 164.2):
        assert min(abs(a - expect) for a in angles) < 0.06


@pytest.mark.parametrize("o", available_orientations(), ids=lambda o: f"{o.angle_deg:.1f}")
def test_box_axes_right_handed_and_in_slip_system(o):
    r = o.rotation()
    assert np.allclose(r @ r.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(r) == pytest.approx(1.0)
    assert np.allclose(r[2], np.array([1, 0, 1]) / math.sqrt(2))
    b = BURGERS / np.linalg.norm(BURGERS)
    assert abs(r[2] @ b) < 1e-12
    assert math.degrees(math.acos(np.clip(r[1] @ b, -1, 1))) == pytest.approx(o.angle_deg, abs=1e-4)
    assert character_angle(o.line) == pytest.approx(o.angle_deg, abs=1e-4)


@pytest.mark.parametrize("o", available_orientations(), ids=lambda o: f"{o.angle_deg:.1f}")
def test_periodic_bcc_fill_has_bulk_density_and_lattice_sites(o):
    lengths = box_lengths(o, A, (20.0, 10.0, 20.0))
    pos = bcc_positions(o, A, lengths)
    assert len(pos) == pytest.approx(2 * np.prod(lengths) / A**3, abs=0.5)
    crys = pos @ o.rotation() / A
    frac = (crys * 2) % 1.0
    assert np.all(np.minimum(frac, 1 - frac) < 1e-6)
    for axis, d in zip(range(3), (o.glide, o.line, o.normal)):
        assert lengths[axis] / lattice_period(d, A) == pytest.approx(round(lengths[axis] / lattice_period(d, A)))


def test_nearest_orientation_and_bad_angle():
    assert nearest_orientation(88.0).angle_deg == pytest.approx(90.0)
    assert nearest_orientation(1.0).angle_deg == pytest.approx(0.0)
    with pytest.raises(ValueError, match="angle_deg=200"):
        nearest_orientation(200.0)


def test_screw_period_is_half_body_diagonal():
    assert lattice_period((1, 1, -1), A) == pytest.approx(A * math.sqrt(3) / 2)
    assert lattice_period((1, 0, 1), A) == pytest.approx(A * math.sqrt(2))
