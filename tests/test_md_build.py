"""Builders checked by real LAMMPS minimization and OVITO DXA at small size."""

import numpy as np
import pytest

from dislomob.md.analysis import crystal_burgers, oriented
from dislomob.md.build import build_dipole, build_loop
from dislomob.md.crystal import available_orientations, nearest_orientation
from md_helpers import minimize_and_extract

A = 2.8553
pytestmark = pytest.mark.slow


@pytest.mark.parametrize("o", available_orientations(), ids=lambda o: f"{o.angle_deg:.1f}deg")
def test_every_character_builds_a_dipole_that_dxa_confirms(o):
    conf = build_dipole(o, A, (30.0, 10.0, 80.0), 82.0, 0.29)
    lines, cell = minimize_and_extract(conf, steps=200)
    assert len(lines) == 2
    rot = conf.crystal_to_box()
    line_axis = cell[1] / np.linalg.norm(cell[1])
    chars, signs = [], []
    for ln in lines:
        xi, b = oriented(ln, line_axis)
        bc = crystal_burgers(b, rot, A)
        assert np.allclose(np.abs(bc), 0.5, atol=0.03), bc
        signs.append(np.sign(bc @ np.array([1, 1, -1])))
        chars.append((float(np.degrees(np.arccos(np.clip(xi @ b / np.linalg.norm(b), -1, 1)))), signs[-1]))
    assert sorted(signs) == [-1, 1]
    # the +b line (sense along +y) has the requested character; its partner -b the supplement
    plus = [c for c, s in chars if s > 0][0]
    minus = [c for c, s in chars if s < 0][0]
    assert plus == pytest.approx(o.angle_deg, abs=1.0)
    assert minus == pytest.approx(180.0 - o.angle_deg, abs=1.0)


def test_shear_loop_builds_one_closed_loop_with_half_111_burgers():
    o = nearest_orientation(90.0)
    conf = build_loop(o, A, (70.0, 70.0, 40.0), 20.0)
    lines, _ = minimize_and_extract(conf, steps=20)
    assert len(lines) == 1
    (loop,) = lines
    assert loop.closed_loop
    bc = crystal_burgers(np.asarray(loop.spatial_burgers), conf.crystal_to_box(), A)
    assert np.allclose(np.abs(bc), 0.5, atol=0.02)
    extent = np.ptp(loop.points, axis=0)
    assert 25.0 < extent[0] < 50.0 and 25.0 < extent[1] < 50.0
    assert extent[2] < 3.0


def test_loop_that_does_not_fit_is_refused():
    with pytest.raises(ValueError, match="loop radius"):
        build_loop(nearest_orientation(90.0), A, (40.0, 40.0, 40.0), 30.0)


def test_glide_plane_window_finds_the_same_lines_as_the_whole_cell():
    from dislomob.md.dxa import run_dxa
    from dislomob.md.run import dxa_window

    conf = build_dipole(nearest_orientation(54.7), A, (40.0, 30.0, 120.0), 82.0, 0.29)
    full = run_dxa(conf.positions, conf.cell, np.zeros(3))
    sub = dxa_window(conf.positions, conf.cell, [ln.points[:, 2].mean() for ln in full], 10.0)
    assert len(sub) < 0.5 * len(conf.positions)
    windowed = run_dxa(sub, conf.cell, np.zeros(3))
    assert len(windowed) == len(full) == 2
    key = lambda ln: ln.points[:, 2].mean()  # noqa: E731
    for a, b in zip(sorted(full, key=key), sorted(windowed, key=key)):
        assert np.allclose(a.spatial_burgers, b.spatial_burgers, atol=0.01)  # elastic distortion sampled by fewer atoms
        # glide position independent of where DXA starts the periodic line: x taken back along the cell's line vector
        glide_x = lambda ln: (ln.points[:, 0] - conf.cell[1, 0] / conf.cell[1, 1] * ln.points[:, 1]).mean()  # noqa: E731
        assert abs(glide_x(a) - glide_x(b)) < 0.5
