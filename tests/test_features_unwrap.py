"""Targets of fast lines: followed through the intermediate DXA frames, unwrapped, ambiguous ones rejected."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from features_helpers import CELL, dipole_frame, meta

from dislomob import graph_schema as S
from dislomob.config import Config
from dislomob.features.discretize import discretize_line
from dislomob.features.featurize import featurize_trajectory
from dislomob.features.graphs import StressSettings, snapshot, targets, to_heterodata
from dislomob.features.targets import AmbiguousTargetError, follow_lines
from dislomob.md.trajectory import Trajectory

GLIDE = CELL[0, 0]  # 30 Angstrom: the cell's glide length along x
FAST = 0.6 * GLIDE  # Angstrom per ps: 0.6 cell per dt = 1 ps, nearest image -0.4 cell
SETTINGS = StressSettings(mu_gpa=82.0, nu=0.29, core_width_angstrom=2.47, images=1, line_images=1)
NORMAL = np.array([0.0, 0.0, 1.0])


def _cfg() -> Config:
    data = Config().model_dump()
    data["features"].update({"node_spacing_nm": 0.6, "images": 1, "line_images": 1, "dt_ps": 1.0})
    return Config.model_validate(data)


def _trajectory(speed: float, spacing_ps: float = 0.1, n_frames: int = 12, drop: tuple[int, ...] = ()) -> Trajectory:
    """Dipole lines gliding apart at ``speed`` Angstrom/ps, frames every ``spacing_ps``, ``drop`` left out."""
    frames = [dipole_frame(round(k * spacing_ps, 6), speed * k * spacing_ps) for k in range(n_frames) if k not in drop]
    return Trajectory(meta(sample_every_ps=spacing_ps), frames)


def _lines(frame):
    return [discretize_line(ln, CELL, 6.0, 4, 0, -1.0) for ln in frame.lines]


def _cartesian_targets(rec: dict) -> tuple[np.ndarray, np.ndarray]:
    """(Cartesian node displacements (n,3), number of nodes of line 0) of a graph record."""
    g = to_heterodata(rec)
    cart = torch.einsum("nij,ni->nj", g[S.NODE].frame.double(), g[S.NODE].y.double()).numpy()
    return cart, int(rec[S.NODE]["pos"].shape[0] // 2)


def test_fast_line_moves_forwards_not_to_the_backward_nearest_image():
    traj = _trajectory(FAST)
    res = featurize_trajectory(traj, _cfg(), "fast")
    assert res.rejected == [] and len(res.records) == 2
    cart, n0 = _cartesian_targets(res.records[0])
    # wavy lines shifted rigidly by 18 Angstrom: nearest-point displacement within the wave amplitude of it
    assert np.all(cart[:n0, 0] > FAST - 2.5) and np.all(cart[:n0, 0] <= FAST + 1e-4)
    assert np.all(cart[n0:, 0] < -FAST + 2.5) and np.all(cart[n0:, 0] >= -FAST - 1e-4)
    # the stored t + dt lines sit at the image the displacements reach (+18 and -18 Angstrom in x)
    now = res.records[0][S.NODE]["pos"].numpy()
    later = res.records[0][S.TARGET]["pos"].numpy()
    m0 = len(later) // 2
    assert later[:m0, 0].mean() - now[:n0, 0].mean() == pytest.approx(FAST, abs=0.5)
    assert later[m0:, 0].mean() - now[n0:, 0].mean() == pytest.approx(-FAST, abs=0.5)
    # without following the lines the same frames give the backward nearest image (what this fixes)
    snap = snapshot(_lines(traj.frames[0]), CELL, np.zeros((3, 3)), NORMAL, 300.0, 2, SETTINGS)
    direct, _ = targets(snap, _lines(traj.frames[10]), CELL)
    assert np.all(direct[:n0, 0] < 0) and np.all(direct[n0:, 0] > 0)


def test_slow_lines_give_exactly_the_nearest_image_targets():
    traj = _trajectory(2.0)
    now, later = _lines(traj.frames[0]), _lines(traj.frames[10])
    path = [(fr.time_ps, _lines(fr)) for fr in traj.frames[1:11]]
    track = follow_lines(now, path, CELL, 0.0, 0.1)
    snap = snapshot(now, CELL, np.zeros((3, 3)), NORMAL, 300.0, 2, SETTINGS)
    disp, moved = targets(snap, later, CELL, track)
    disp0, moved0 = targets(snap, later, CELL)
    assert np.array_equal(disp, disp0)
    assert all(np.array_equal(a.nodes, b.nodes) for a, b in zip(moved, moved0))
    assert np.allclose(np.concatenate(track.shift).mean(axis=0)[[1, 2]], 0.0, atol=0.3)


def test_missing_intermediate_frames_are_rejected_with_the_gap():
    traj = _trajectory(FAST, drop=(4, 5, 6))  # 0.4 ps without a frame inside both windows
    res = featurize_trajectory(traj, _cfg(), "gap")
    assert res.records == []
    reasons = [r["reason"] for r in res.rejected]
    assert len(reasons) == 2
    assert all("no usable frame for 0.4 ps between t=0.3 and t=0.7 ps" in r for r in reasons)
    assert all("frames missing" in r for r in reasons)


def test_one_missing_frame_is_bridged_when_the_step_stays_safe():
    full = featurize_trajectory(_trajectory(FAST), _cfg(), "full")
    holed = featurize_trajectory(_trajectory(FAST, drop=(5,)), _cfg(), "hole")
    assert holed.rejected == [] and len(holed.records) == len(full.records) == 2
    assert torch.equal(holed.records[0][S.NODE]["y"], full.records[0][S.NODE]["y"])


def test_too_large_step_between_frames_is_rejected():
    # frames every 0.5 ps: 9 Angstrom = 0.3 cell per step, above the trusted 0.25
    res = featurize_trajectory(_trajectory(FAST, spacing_ps=0.5, n_frames=4), _cfg(), "coarse")
    assert res.records == [] and len(res.rejected) == 2
    assert all("steps 0.3 of the cell" in r["reason"] for r in res.rejected)


def test_without_intermediate_frames_a_fast_line_is_rejected_not_reversed():
    # frames every dt = 1 ps: the only step is the nearest image, 0.4 cell backwards
    res = featurize_trajectory(_trajectory(FAST, spacing_ps=1.0, n_frames=3), _cfg(), "sparse")
    assert res.records == [] and len(res.rejected) == 2
    assert all("ambiguous target" in r["reason"] and "0.4 of the cell" in r["reason"] for r in res.rejected)


def test_unusable_frame_at_t_plus_dt_inside_tracking_raises():
    traj = _trajectory(2.0, n_frames=3)
    now = _lines(traj.frames[0])
    with pytest.raises(AmbiguousTargetError, match="frame at t \\+ dt is unusable"):
        follow_lines(now, [(0.1, _lines(traj.frames[1])), (0.2, "broken")], CELL, 0.0, 0.1)


def test_line_count_change_over_two_frames_inside_the_window_is_rejected():
    traj = _trajectory(FAST)
    for k in (4, 5):  # one line lost (reaction or DXA failure) for 0.2 ps inside both windows
        fr = traj.frames[k]
        traj.frames[k] = type(fr)(fr.time_ps, fr.cell, fr.origin, fr.lines[:1])
    res = featurize_trajectory(traj, _cfg(), "lost")
    assert res.records == [] and len(res.rejected) == 2
    for r in res.rejected:
        assert "t=0.4 ps unusable (1 line(s) instead of 2)" in r["reason"]
        assert "no usable frame for 0.3 ps" in r["reason"]
