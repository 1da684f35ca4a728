"""Graphs: invariance under rotation and translation, targets, schema layout, and the stage."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from features_helpers import CELL, ROTATION, dipole_trajectory, meta

from dislomob import graph_schema as S
from dislomob.config import Config
from dislomob.features.discretize import discretize_line
from dislomob.features.featurize import featurize_dataset, featurize_trajectory, inspect_graph_file
from dislomob.features.graphs import StressSettings, load_graphs, snapshot, targets, to_heterodata, to_record
from dislomob.features.invariants import GP_FEATURE_NAMES, NODE_FEATURE_NAMES, graph_features
from dislomob.md.trajectory import Frame, Line, Trajectory, write_trajectory

SETTINGS = StressSettings(mu_gpa=82.0, nu=0.29, core_width_angstrom=2.47, images=1, line_images=1)
APPLIED = np.array([[0.1, 0.0, 0.5], [0.0, -0.2, 0.05], [0.5, 0.05, 0.0]])


def _features(frames, cell, applied, normal):
    now = [discretize_line(ln, cell, 6.0, 4, 0, -1.0) for ln in frames[0].lines]
    later = [discretize_line(ln, cell, 6.0, 4, 0, -1.0) for ln in frames[1].lines]
    snap = snapshot(now, cell, applied, normal, 300.0, 2, SETTINGS)
    disp, _ = targets(snap, later, cell)
    return snap, disp


def _model_inputs(snap, disp, cell) -> tuple[np.ndarray, np.ndarray]:
    """(node, GP) invariant model inputs of a snapshot, float64."""
    info = {"dt_ps": 1.0, "temperature_k": 300.0, "angle_deg": 90.0, "stress_gpa": 0.5, "traj_id": "t",
            "frame_index": 0, "time_ps": 0.0}
    g = to_heterodata(to_record(snap, disp, snap.lines, cell, info))
    g[S.GP].stress_gpa = torch.as_tensor(snap.gp_stress_gpa)  # keep float64 for a 1e-6 comparison
    g[S.NODE].pos, g[S.NODE].frame = torch.as_tensor(snap.node_pos), torch.as_tensor(snap.node_frame)
    node_x, gp_x = graph_features(g, torch.float64)
    return node_x.numpy(), gp_x.numpy()


def _moved(frame: Frame, q: np.ndarray, shift: np.ndarray) -> Frame:
    lines = [Line(ln.points @ q.T + shift, ln.true_burgers, ln.spatial_burgers @ q.T, ln.is_loop, ln.is_infinite)
             for ln in frame.lines]
    return Frame(frame.time_ps, frame.cell @ q.T, frame.origin @ q.T + shift, lines)


def test_rotation_and_translation_leave_features_unchanged_and_rotate_targets():
    traj = dipole_trajectory(3)
    normal = ROTATION @ np.array([1.0, 0.0, 1.0]) / np.sqrt(2)
    snap, disp = _features(traj.frames[:2], CELL, APPLIED, normal)
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))
    q *= np.sign(np.linalg.det(q))
    shift = np.array([13.0, -7.0, 101.0])
    frames = [_moved(f, q, shift) for f in traj.frames[:2]]
    snap2, disp2 = _features(frames, CELL @ q.T, q @ APPLIED @ q.T, q @ normal)
    inputs, inputs2 = _model_inputs(snap, disp, CELL), _model_inputs(snap2, disp2, CELL @ q.T)
    for a, b in zip(inputs, inputs2):
        scale = np.maximum(np.abs(a).max(axis=0), 1e-9)  # columns that vanish identically: absolute 1e-15
        assert np.all(np.abs(a - b) <= 1e-6 * scale + 1e-12)
    assert np.allclose(disp2, disp @ q.T, atol=1e-9)
    assert np.allclose(snap2.node_frame, snap.node_frame @ q.T, atol=1e-12)
    loc = np.einsum("nia,na->ni", snap.node_frame, disp)
    loc2 = np.einsum("nia,na->ni", snap2.node_frame, disp2)
    assert np.allclose(loc, loc2, atol=1e-9)
    assert np.max(inputs[1][:, GP_FEATURE_NAMES.index("tau_abs_gpa")]) > 0.1  # non-trivial stress


def test_targets_are_the_glide_displacement_between_frames():
    traj = dipole_trajectory(3, dt_ps=0.5, speed=2.0)  # lines glide apart by 1 Angstrom per frame each
    normal = ROTATION @ np.array([1.0, 0.0, 1.0]) / np.sqrt(2)
    snap, disp = _features([traj.frames[0], traj.frames[2]], CELL, APPLIED, normal)
    n0 = snap.lines[0].n_nodes
    # nearest-point displacement of a wavy line shifted by 2 Angstrom along x: |d| <= 2, mostly along x
    assert np.all(np.linalg.norm(disp, axis=1) <= 2.0 + 1e-9)
    assert np.all(disp[:n0, 0] > 1.0) and np.all(disp[n0:, 0] < -1.0)


def _write_traj(path, frames):
    write_trajectory(path, Trajectory(meta(), frames))


def test_stage_writes_graphs_summary_and_skips_bad_frames_with_reasons(tmp_path):
    traj = dipole_trajectory(6, dt_ps=0.5, speed=2.0)
    frames = list(traj.frames)
    frames[4] = Frame(frames[4].time_ps, CELL, np.zeros(3), frames[4].lines[:1])  # annihilation-like
    broken = frames[1].lines[0]
    frames[1] = Frame(frames[1].time_ps, CELL, np.zeros(3),
                      [Line(broken.points[:-1], broken.true_burgers, broken.spatial_burgers, True, True),
                       frames[1].lines[1]])
    md, out = tmp_path / "md", tmp_path / "graphs"
    md.mkdir()
    _write_traj(md / "run1.h5", frames)
    (out).mkdir()
    (out / "stale.pt").write_bytes(b"x")
    data = Config().model_dump()
    data["features"].update({"node_spacing_nm": 0.6, "images": 1, "line_images": 1})
    cfg = Config.model_validate(data)
    summary = featurize_dataset(cfg, md, out, tmp_path / "summary.json")
    assert not (out / "stale.pt").exists()
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk["n_graphs"] == summary["n_graphs"]
    reasons = {r["frame_index"]: r["reason"] for r in on_disk["trajectories"][0]["rejected"]}
    # dt = 1 ps = 2 frames: frames 0..3 have successors; 1 is broken, 2 -> 4 changes line count
    assert "not a lattice vector" in reasons[1]
    assert "line count changes from 2 to 1" in reasons[2]
    assert summary["n_graphs"] == 2 and summary["n_rejected"] == 2
    assert summary["pk_agreement"] == 1.0
    info = inspect_graph_file(out / "run1.pt")
    assert info["n_graphs"] == 2 and info["n_nodes"] == summary["n_nodes"] and info["n_gps"] == 2 * info["n_nodes"]
    graphs = load_graphs(out / "run1.pt")
    g = graphs[0]
    node_x, gp_x = graph_features(g)
    n_node, n_gp = g[S.NODE].pos.shape[0], g[S.GP].pos.shape[0]
    assert node_x.shape == (n_node, len(NODE_FEATURE_NAMES)) and gp_x.shape == (n_gp, len(GP_FEATURE_NAMES))
    assert g[S.NODE].frame.shape == (n_node, 3, 3) and g[S.NODE].y.shape == (n_node, 3)
    assert g[S.GP_TO_NODE].edge_index.shape == (2, 2 * n_gp)
    assert int(g[S.GP_TO_NODE].edge_index[1].max()) < n_node
    assert torch.equal(g[S.NODE_TO_GP].edge_index, g[S.GP_TO_NODE].edge_index.flip(0))
    assert g[S.NODE_SEG].edge_index.shape == (2, n_node) and g[S.TARGET].pos.shape[0] > 0
    assert g.cell.shape == (1, 3, 3) and float(g.dt_ps) == pytest.approx(1.0)
    # the frame maps local targets back to Cartesian displacements, glide along x for these edges
    cart = torch.einsum("nij,ni->nj", g[S.NODE].frame, g[S.NODE].y)
    assert torch.all(cart[:, 0].abs() > 1.0)


def test_featurize_trajectory_without_frames_gives_no_graphs():
    res = featurize_trajectory(Trajectory(meta(), []), Config(), "empty")
    assert res.records == [] and res.rejected == []


def test_stage_reads_only_the_runs_the_index_lists(tmp_path):
    md, out = tmp_path / "md", tmp_path / "graphs"
    md.mkdir()
    traj = dipole_trajectory(n_frames=5, dt_ps=0.5)
    _write_traj(md / "current.h5", traj.frames)
    _write_traj(md / "cached_old.h5", traj.frames)
    (md / "index.json").write_text(json.dumps({"runs": [{"file": "current.h5"}]}))
    data = Config().model_dump()
    data["features"].update({"node_spacing_nm": 0.6, "images": 1, "line_images": 1})
    summary = featurize_dataset(Config.model_validate(data), md, out, tmp_path / "summary.json")
    assert [e["traj_id"] for e in summary["trajectories"]] == ["current"]
    assert sorted(p.name for p in out.glob("*.pt")) == ["current.pt"]
