"""The evaluate stage's rollout part (dislomob.evaluate.rollout_report) on committed MD trajectories.

- The hook rolls out both laws through the DDD API and reports exactly what dislomob.ddd.rollout.rollout_errors
  gives for the same law and trajectory; its CSV has one row per trajectory and compared time, its figures are
  PNG files.
- The per-bucket summary is the median over trajectories of the per-trajectory numbers.
- An eval_data rollout run is the project's MD run with only the recorded duration and the seed changed.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from dislomob.config import Config, parse_config
from dislomob.ddd.law import MobilityLaw
from dislomob.ddd.rollout import rollout_errors
from dislomob.evaluate.models import EvaluatedModel
from dislomob.evaluate.rollout_report import bucket_summary, rollout_hook, trajectory_row
from dislomob.evaluate.rollout_runs import rollout_md_config, rollout_specs
from dislomob.evaluate.stage import StageContext
from dislomob.md.run import run_key
from dislomob.model.ensemble import load_ensemble
from ddd_helpers import untrained_law_file
from test_rollout import baseline_module

ROOT = Path(__file__).resolve().parents[1]
MD_DIR = ROOT / "datasets" / "al_benchmark" / "md"
RUNS = ["37fec74a54302559", "4389b9eddd9c2639"]  # demo held-out runs: edge 300 K 0.25 GPa, screw 300 K 0.5 GPa
CFG = parse_config(Config().model_dump() | {"rollout": {"horizon_ps": 0.6, "overlay_snapshots": 2, "dt_ps": 0.1}})


@pytest.fixture(scope="module")
def hook_result(tmp_path_factory):
    import numba

    numba.set_num_threads(1)
    out = tmp_path_factory.mktemp("evaluate")
    model, _ = load_ensemble(untrained_law_file(out / "law", members=3, seed=4))
    ctx = StageContext(CFG, EvaluatedModel("train", model, CFG, out / "law" / "ensemble.pt", [], []),
                       baseline_module(), {}, {}, {}, out)
    metrics = rollout_hook([MD_DIR / f"{r}.h5" for r in RUNS], progress=False)(ctx)
    return out, model, metrics


@pytest.mark.slow  # four rollouts of 0.6 ps (~15 s)
def test_hook_reports_what_rollout_errors_gives_and_writes_its_files(hook_result) -> None:
    out, _, metrics = hook_result
    direct = rollout_errors({"baseline": MobilityLaw(baseline_module(), CFG)}, MD_DIR / f"{RUNS[0]}.h5", CFG,
                            progress=False)
    row = next(r for r in metrics["trajectories"] if r["traj_id"] == RUNS[0])
    assert row["baseline_error_end"] == pytest.approx(direct["laws"]["baseline"]["relative_error"][-1], rel=1e-9)
    assert row["horizon_ps"] == pytest.approx(0.6) and row["bucket"] == direct["bucket"]
    assert {r["bucket"] for r in metrics["trajectories"]} == set(metrics["by_bucket"]) == {"edge_like", "screw_like"}
    for r in metrics["trajectories"]:
        for law in ("pignn", "baseline"):
            assert math.isfinite(r[f"{law}_error_end"]) and r[f"{law}_error_end"] > 0
    with open(out / "rollout_error.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 6  # two trajectories x frames every 0.1 ps up to 0.6 ps
    assert sorted({round(float(r["time_ps"]), 6) for r in rows}) == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    for name in ("rollout_error.png", "rollout_overlay.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bucket_summary_is_the_median_over_trajectories() -> None:
    rng = np.random.default_rng(0)
    rows = []
    for k in range(5):
        rec = {"traj_id": f"t{k}", "bucket": "edge_like" if k < 3 else "screw_like", "angle_deg": 90.0,
               "temperature_k": 300.0, "stress_gpa": 0.5, "horizon_ps": 2.0 + k, "tracked_horizon_ps": 2.0,
               "times_ps": [0.5, 1.0, 1.5], "md_travel_angstrom": [1.0, 2.0, 3.0],
               "rigid_relative_error": list(rng.uniform(0, 0.1, 3)),
               "laws": {law: {"relative_error": list(rng.uniform(0, 1, 3)), "wall_s_per_step": 0.01}
                        for law in ("pignn", "baseline")}}
        rows.append(trajectory_row(rec))
        assert rows[-1]["pignn_error_1ps"] == rec["laws"]["pignn"]["relative_error"][1]
        assert rows[-1]["baseline_error_mean"] == pytest.approx(np.mean(rec["laws"]["baseline"]["relative_error"]))
    s = bucket_summary(rows)
    assert s["edge_like"]["n_trajectories"] == 3 and s["edge_like"]["horizon_ps"] == 2.0
    assert s["edge_like"]["pignn_error_end_median"] == pytest.approx(np.median([r["pignn_error_end"] for r in rows[:3]]))
    assert s["screw_like"]["baseline_error_mean_median"] == pytest.approx(
        np.median([r["baseline_error_mean"] for r in rows[3:]]))


def test_rollout_runs_change_only_duration_and_seed() -> None:
    cfg = Config()
    long_cfg = rollout_md_config(cfg)
    assert long_cfg.md.duration_ps == cfg.rollout.md_duration_ps != cfg.md.duration_ps
    assert long_cfg.md.model_dump(exclude={"duration_ps"}) == cfg.md.model_dump(exclude={"duration_ps"})
    specs = rollout_specs(cfg)
    r = cfg.rollout
    assert len(specs) == len(r.md_angles_deg) * len(r.md_temperatures_k) * len(r.md_stresses_gpa)
    assert {s.seed for s in specs} == {r.md_seed} and r.md_seed != cfg.seed
    keys = {run_key(s, long_cfg.md, cfg.material) for s in specs}
    assert len(keys) == len(specs)
    same_grid = [type(s)(s.temperature_k, s.stress_gpa, s.angle_deg, s.geometry, cfg.seed) for s in specs]
    assert keys.isdisjoint(run_key(s, long_cfg.md, cfg.material) for s in same_grid)


def _loop_trajectory(key: str, growth_angstrom_per_ps: float):
    """A circular glide loop (radius 30 Angstrom + growth t) in a 150 x 150 x 60 Angstrom cell, frames every
    0.1 ps, reported by DXA with alternating sense (and -b), loaded at 2 GPa."""
    from features_helpers import B_LEN, meta

    from dislomob.md.trajectory import Frame, Line, Trajectory

    cell = np.diag([150.0, 150.0, 60.0])
    frames = []
    for k in range(8):
        sign = 1.0 if k % 2 == 0 else -1.0
        phi = np.linspace(0.0, 2 * np.pi, 61)[:-1][::int(sign)]
        r = 30.0 + growth_angstrom_per_ps * 0.1 * k
        pts = np.column_stack([75.0 + r * np.cos(phi), 75.0 + r * np.sin(phi), np.full_like(phi, 30.0)])
        b = sign * np.array([B_LEN, 0.0, 0.0])
        frames.append(Frame(0.1 * k, cell, np.zeros(3),
                            [Line(np.vstack([pts, pts[:1]]), sign * np.array([0.5, 0.5, -0.5]), b, True)]))
    return Trajectory(meta(key=key, geometry="loop", stress_gpa=2.0, sample_every_ps=0.1,
                           stress_tensor_gpa=[[0, 0, 2.0], [0, 0, 0], [2.0, 0, 0]]), frames)


@pytest.mark.slow  # loop rollouts of 0.6 ps (~20 s)
def test_hook_rolls_the_loop_law_out_on_test_loops_and_the_dipole_law_on_every_loop(tmp_path) -> None:
    import numba

    from dislomob.md.trajectory import write_trajectory

    numba.set_num_threads(1)
    for key, growth in (("loop_test", 5.0), ("loop_train", 8.0)):
        write_trajectory(tmp_path / "loops" / f"{key}.h5", _loop_trajectory(key, growth))
    model, _ = load_ensemble(untrained_law_file(tmp_path / "law", members=3, seed=4))
    loops = {"model": baseline_module(), "baseline": baseline_module(edge_drag0=0.1), "cfg": CFG,
             "md_dir": tmp_path / "loops", "test_ids": ["loop_test"], "all_ids": ["loop_test", "loop_train"]}
    ctx = StageContext(CFG, EvaluatedModel("train", model, CFG, tmp_path / "law" / "ensemble.pt", [], []),
                       baseline_module(), {}, {}, {}, tmp_path, {"loops": loops})
    metrics = rollout_hook([MD_DIR / f"{RUNS[0]}.h5"], progress=False)(ctx)
    rows = {r["traj_id"]: r for r in metrics["trajectories"]}
    assert set(rows) == {RUNS[0], "loop_test"} and rows["loop_test"]["bucket"] == "loop"  # a training loop is not
    assert set(metrics["by_bucket"]) == {"edge_like", "loop"}
    direct = rollout_errors({"pignn": MobilityLaw(baseline_module(), CFG)}, tmp_path / "loops" / "loop_test.h5", CFG,
                            progress=False)
    assert rows["loop_test"]["pignn_error_end"] == pytest.approx(direct["laws"]["pignn"]["relative_error"][-1],
                                                                 rel=1e-9)
    assert all(direct["tracked"])  # the loop is followed although DXA reverses its sense every frame
    on_loops = metrics["dipole_law_on_loops"]
    assert on_loops["n_loops"] == 2 and set(on_loops["loops"]) == {"loop_test", "loop_train"}
    for v in on_loops["loops"].values():  # each loop either rolled out to a finite error or failed with a reason
        assert (v["failed"] is None and math.isfinite(v["error_end"])) or "Error" in v["failed"]
    assert on_loops["n_diverged"] == sum(v["failed"] is not None for v in on_loops["loops"].values())
