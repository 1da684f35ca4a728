import numpy as np
import pytest

from dislomob.md.run import line_count_event
from dislomob.md.trajectory import Event, Frame, Line, Trajectory, TrajectoryMeta, read_meta, read_trajectory, write_trajectory


def _meta(**kw):
    base = dict(key="abc", temperature_k=300.0, stress_gpa=0.5, stress_tensor_gpa=np.zeros((3, 3)).tolist(), angle_deg=90.0,
                requested_angle_deg=88.0, line_direction=[-1, 2, 1], glide_direction=[1, 1, -1], plane_normal=[1, 0, 1],
                burgers=[0.5, 0.5, -0.5], rotation=np.eye(3).tolist())
    base.update(kw)
    return TrajectoryMeta(**base)


def test_roundtrip_preserves_frames_lines_and_metadata(tmp_path):
    rng = np.random.default_rng(0)
    frames = []
    for i in range(3):
        lines = [Line(rng.normal(size=(5 + j, 3)), np.array([0.5, 0.5, -0.5]) * (-1) ** j, rng.normal(size=3), j == 1, j == 0)
                 for j in range(2)]
        frames.append(Frame(0.1 * i, np.diag([10.0, 20.0, 30.0]) + i, rng.normal(size=3), lines))
    meta = _meta(events=[Event(kind="cut", time_ps=0.2, detail="x")], status="cut")
    path = tmp_path / "t.h5"
    write_trajectory(path, Trajectory(meta, frames))
    back = read_trajectory(path)
    assert back.meta == meta
    assert len(back.frames) == 3
    for f, g in zip(frames, back.frames):
        assert f.time_ps == g.time_ps and np.array_equal(f.cell, g.cell) and np.array_equal(f.origin, g.origin)
        for a, b in zip(f.lines, g.lines):
            assert np.array_equal(a.points, b.points) and np.array_equal(a.true_burgers, b.true_burgers)
            assert np.array_equal(a.spatial_burgers, b.spatial_burgers)
            assert (a.is_loop, a.is_infinite) == (b.is_loop, b.is_infinite)
    assert read_meta(path).status == "cut"
    assert [p.name for p in tmp_path.iterdir()] == ["t.h5"]


def test_failed_write_leaves_no_file(tmp_path):
    path = tmp_path / "bad.h5"
    bad = Trajectory(_meta(), [Frame(0.0, np.eye(3), np.zeros(3), [Line(np.zeros((2, 3)), np.zeros(3), np.zeros(3), False)])])
    bad.frames.append("not a frame")
    with pytest.raises(AttributeError):
        write_trajectory(path, bad)
    assert list(tmp_path.iterdir()) == []


def test_missing_file_error_names_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        read_trajectory(tmp_path / "nope.h5")


def test_line_count_events():
    assert line_count_event(2, 2, 1.0) is None
    assert line_count_event(0, 2, 1.5).kind == "no_lines"
    e = line_count_event(1, 2, 0.7)
    assert e.kind == "line_count_change" and e.time_ps == 0.7


def test_empty_or_foreign_file_gives_a_clear_error(tmp_path, capsys):
    from dislomob.cli import main

    empty = tmp_path / "empty.h5"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty.h5 is not a trajectory file"):
        read_trajectory(empty)
    assert main(["inspect", str(empty)]) == 2
    assert "not a trajectory file" in capsys.readouterr().err
