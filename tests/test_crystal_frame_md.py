"""Real MD (LAMMPS + DXA, ~5.6k atoms, one thread): the crystal's position recorded by the MD makes a dipole's two
lines move with equal and opposite speeds, which the lab frame does not show; an unloaded dipole does not drift.
Mixed and screw characters at the demo size: tests/test_crystal_frame.py (datasets/replicas)."""

from __future__ import annotations

import pytest
from conftest import small_config

from dislomob.md.analysis import dipole_symmetry
from dislomob.md.run import RunSpec, simulate
from dislomob.md.trajectory import Trajectory, read_trajectory

pytestmark = pytest.mark.slow
BOX = {"glide_nm": 4.0, "line_nm": 2.0, "height_nm": 8.0}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("frame_md")
    cfg = small_config(duration_ps=1.5, equilibrate_ps=0.3, settle_ps=1.0, threads=1, box=BOX)
    specs = {"edge": RunSpec(300.0, 0.6, 90.0), "unloaded": RunSpec(300.0, 0.0, 90.0)}
    return {k: read_trajectory(simulate(s, cfg.md, cfg.material, out)) for k, s in specs.items()}


def _lab(traj: Trajectory) -> Trajectory:
    from dataclasses import replace

    return Trajectory(traj.meta.model_copy(update={"lattice_reference": None}), [replace(f, lattice_u=None) for f in traj.frames])


def test_edge_dipole_lines_move_equal_and_opposite_relative_to_the_crystal(runs):
    traj = runs["edge"]
    assert traj.meta.status == "ok" and traj.meta.lattice_reference == "measured"
    assert all(f.lattice_u is not None and f.lattice_u.shape[1] == 3 for f in traj.frames)
    crystal, lab = dipole_symmetry(traj), dipole_symmetry(_lab(traj))
    print(f"edge 300 K 0.6 GPa: {crystal.speed_m_s:.0f} m/s, common mode {100 * crystal.common_mode_fraction:.2f}% "
          f"(lab frame {100 * lab.common_mode_fraction:.2f}%)")
    assert crystal.speed_m_s > 300.0
    assert crystal.common_mode_fraction <= 0.02
    assert lab.common_mode_fraction > 0.02


def test_unloaded_dipole_does_not_drift_relative_to_the_crystal(runs):
    driven = dipole_symmetry(runs["edge"]).speed_m_s
    idle = dipole_symmetry(runs["unloaded"])
    print(f"unloaded: {idle.speed_m_s:.0f} m/s mean |v| against {driven:.0f} m/s at 0.6 GPa")
    assert idle.speed_m_s < 0.1 * driven
