"""Real MD of small Fe dipoles: glide velocities, the edge/screw contrast, stress control, drift."""

import json
import time

import numpy as np
import pytest

from conftest import small_config
from dislomob.cli import main
from dislomob.md.analysis import summarize
from dislomob.md.run import RunSpec, simulate
from dislomob.md.trajectory import read_trajectory

pytestmark = pytest.mark.slow
SKIP_PS = 0.5


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("md")
    cfg = small_config(duration_ps=2.5, box={"glide_nm": 4.0, "line_nm": 3.0, "height_nm": 10.0})
    cases = {
        "edge_300": RunSpec(300.0, 0.5, 90.0),
        "screw_300": RunSpec(300.0, 0.5, 0.0),
        "edge_100": RunSpec(100.0, 0.5, 90.0),
        "screw_100": RunSpec(100.0, 0.5, 0.0),
        "edge_300_unloaded": RunSpec(300.0, 0.0, 90.0),
    }
    paths = {k: simulate(s, cfg.md, cfg.material, out) for k, s in cases.items()}
    return {"cfg": cfg, "out": out, "paths": paths, "specs": cases}


def _speeds(path):
    traj = read_trajectory(path)
    assert traj.meta.status == "ok", traj.meta.failure_reason
    return [s.velocity_m_s for s in summarize(traj, skip_ps=SKIP_PS)]


def test_edge_dipole_lines_glide_opposite_at_hundreds_of_m_per_s(runs):
    v = _speeds(runs["paths"]["edge_300"])
    assert len(v) == 2
    assert np.sign(v[0]) == -np.sign(v[1])
    for speed in np.abs(v):
        assert 200.0 <= speed <= 3000.0


def test_measured_shear_stress_within_10_percent_of_target(runs):
    for key in ("edge_300", "screw_300"):
        meta = read_trajectory(runs["paths"][key]).meta
        assert meta.measured_stress_gpa == pytest.approx(0.5, rel=0.10)


def test_screw_slower_than_edge_at_300k(runs):
    edge = np.mean(np.abs(_speeds(runs["paths"]["edge_300"])))
    screw = np.mean(np.abs(_speeds(runs["paths"]["screw_300"])))
    print(f"300 K, 0.5 GPa: edge {edge:.0f} m/s, screw {screw:.0f} m/s, ratio {edge / screw:.1f}")
    assert screw < edge


def test_screw_at_least_three_times_slower_than_edge_at_100k(runs):
    edge = np.mean(np.abs(_speeds(runs["paths"]["edge_100"])))
    screw = np.mean(np.abs(_speeds(runs["paths"]["screw_100"])))
    print(f"100 K, 0.5 GPa: edge {edge:.0f} m/s, screw {screw:.0f} m/s, ratio {edge / screw:.1f}")
    assert edge >= 3.0 * screw


def test_unloaded_edge_dipole_barely_drifts(runs):
    driven = np.mean(np.abs(_speeds(runs["paths"]["edge_300"])))
    drift = np.max(np.abs(_speeds(runs["paths"]["edge_300_unloaded"])))
    assert drift < 0.2 * driven


def test_passing_stress_reported_and_below_sampled_stress(runs):
    meta = read_trajectory(runs["paths"]["edge_300"]).meta
    assert 0.0 < meta.passing_stress_gpa < 0.25


def test_cache_makes_a_repeated_run_free(runs):
    cfg, spec, path = runs["cfg"], runs["specs"]["edge_300"], runs["paths"]["edge_300"]
    before = path.stat().st_mtime_ns
    t0 = time.perf_counter()
    again = simulate(spec, cfg.md, cfg.material, runs["out"])
    assert again == path and path.stat().st_mtime_ns == before
    assert time.perf_counter() - t0 < 1.0


def test_inspect_json_reports_metadata_and_line_velocities(runs, capsys):
    assert main(["inspect", str(runs["paths"]["edge_300"]), "--json", "--skip-ps", str(SKIP_PS)]) == 0
    info = json.loads(capsys.readouterr().out)
    for key in ("temperature_k", "stress_gpa", "angle_deg", "n_atoms", "status"):
        assert key in info["metadata"]
    assert info["metadata"]["status"] == "ok" and info["metadata"]["n_atoms"] > 1000
    assert len(info["lines"]) == 2
    for ln in info["lines"]:
        assert np.allclose(np.abs(ln["burgers"]), 0.5, atol=0.03)
        assert ln["character_deg"] == pytest.approx(90.0, abs=1.0)
    speeds = [ln["velocity_m_s"] for ln in info["lines"]]
    assert np.allclose(sorted(speeds), sorted(_speeds(runs["paths"]["edge_300"])), rtol=1e-3)
