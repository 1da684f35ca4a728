"""The evaluate stage end to end on a small real setup: analytic trajectories saved as graph files, an ensemble
file with its split, a synthetic MD dipole, MLflow in a temporary store."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from model_helpers import torch_one_thread, trajectory_graphs, write_model_dir  # noqa: F401

from dislomob.config import Config, ConfigError, parse_config
from dislomob.errors import InputFileError

RUNS = {"tr0": (90.0, 0.5, 300.0), "tr1": (0.0, 0.5, 300.0), "tr2": (35.3, 0.5, 500.0), "va0": (90.0, 0.25, 500.0),
        "te0": (90.0, 0.5, 500.0), "te1": (0.0, 0.25, 300.0), "te2": (160.0, 0.5, 300.0)}
SPLIT = {"train": ["tr0", "tr1", "tr2"], "val": ["va0"], "test": ["te0", "te1", "te2"]}


def _setup(tmp_path, evaluate: dict | None = None) -> tuple[Config, dict]:
    from dislomob.md.trajectory import write_trajectory
    from features_helpers import dipole_trajectory

    graphs = {t: trajectory_graphs(t, a, s, k, n_frames=3) for t, (a, s, k) in RUNS.items()}
    write_model_dir(graphs, SPLIT, tmp_path / "graphs", tmp_path / "train", seed=3)
    write_trajectory(tmp_path / "md" / "run0.h5", dipole_trajectory(n_frames=5, dt_ps=0.5, speed=2.0))
    data = Config().model_dump()
    data["train"].update(tracking_uri=f"sqlite:///{tmp_path}/mlflow/mlflow.db", baseline_steps=150)
    data["evaluate"].update(model="train", test_sets=["split"], angle_step_deg=90.0, stresses_gpa=[0.5, 1.0],
                            temperatures_k=[300.0], bootstrap_resamples=200, out_dir=str(tmp_path / "reports"),
                            experiment="test-evaluate", **(evaluate or {}))
    return parse_config(data), graphs


def _run(cfg, tmp_path, **kw):
    from dislomob.evaluate.stage import evaluate_stage

    return evaluate_stage(cfg, tmp_path / "metrics" / "evaluate.json", graphs_dir=tmp_path / "graphs",
                          train_dir=tmp_path / "train", md_dir=tmp_path / "md", al_md_dir=tmp_path / "none",
                          al_graphs_dir=tmp_path / "none", **kw)


@pytest.mark.slow
def test_evaluate_stage_end_to_end(tmp_path) -> None:
    cfg, graphs = _setup(tmp_path)
    seen = []
    m = _run(cfg, tmp_path, rollout=lambda ctx: seen.append(ctx) or {"error_at_horizon": 0.07})
    on_disk = json.loads((tmp_path / "metrics" / "evaluate.json").read_text())
    assert on_disk == m
    s = m["single_step"]["dipole"]
    assert s["n_graphs"] == 9 and s["trajectories"] == SPLIT["test"]
    for unit in ("pct", "angstrom"):
        for law in ("pignn", "baseline"):
            iv = s[f"error_{unit}"][law]
            assert iv["low"] <= iv["median"] <= iv["high"] and iv["level"] == 0.9 and iv["n_trajectories"] == 3
    for by in ("angle", "temperature", "stress"):
        assert sum(b["n_graphs"] for b in s[f"by_{by}"].values()) == 9
        with open(tmp_path / "reports" / f"errors_dipole_by_{by}.csv") as fh:
            assert sum(int(r["n_graphs"]) for r in csv.DictReader(fh)) == 9
    # the fitted law is fitted on the ensemble's training trajectories: it learns the test law's motion
    assert s["error_pct"]["baseline"]["median"] < 30.0
    assert m["model"]["kind"] == "train" and m["model"]["train_trajectories"] == 3
    assert set(m["physics"]) == {"pignn", "baseline"}
    for checks in m["physics"].values():
        assert set(checks) == {"edge_faster_than_screw", "speed_rises_with_stress", "energy_largest_near_screw"}
        assert all(isinstance(c["passed"], bool) and c["n"] >= 1 for c in checks.values())
    # test conditions (500 K, 0.5), (300 K, 0.25), (300 K, 0.5): three edge-vs-screw cases
    assert m["physics"]["baseline"]["edge_faster_than_screw"]["n"] == 3
    assert m["md_speeds"]["n_runs"] == 1 and m["md_speeds"]["n_runs_unseen"] == 1
    with open(tmp_path / "reports" / "md_speeds.csv") as fh:
        md = list(csv.DictReader(fh))
    assert float(md[0]["speed_m_per_s"]) == pytest.approx(200.0, rel=1e-6)  # 2 Angstrom/ps
    with open(tmp_path / "reports" / "curves_reference.csv") as fh:
        ref = list(csv.DictReader(fh))
    assert [float(r["angle_deg"]) for r in ref] == [0.0, 90.0, 180.0]
    for png in ("errors_dipole.png", "interpretability.png", "md_speeds.png", "intervals.png"):
        assert (tmp_path / "reports" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    physics = json.loads((tmp_path / "reports" / "physics.json").read_text())
    assert len(physics["pignn"]["speed_rises_with_stress"]["cases"]) == 2 * 3  # 2 test temperatures x 3 characters
    assert m["rollout"] == {"error_at_horizon": 0.07} and seen[0].test_trajectories == {"dipole": SPLIT["test"]}
    assert seen[0].md_files == {} and seen[0].baseline_fit["sign"] in (1.0, -1.0)

    import mlflow

    client = mlflow.MlflowClient(tracking_uri=cfg.train.tracking_uri)
    run = client.get_run(m["mlflow_run_id"])
    assert run.data.params["evaluate.model"] == "train"
    assert run.data.metrics["single_step.dipole.error_pct.pignn.median"] == pytest.approx(s["error_pct"]["pignn"]["median"])
    assert run.data.metrics["rollout.error_at_horizon"] == pytest.approx(0.07)
    arts = {a.path for a in client.list_artifacts(run.info.run_id, "evaluate")}
    assert {"evaluate/interpretability.png", "evaluate/errors_dipole_by_angle.csv", "evaluate/physics.json"} <= arts


def test_seen_trajectories_are_left_out_and_missing_inputs_are_named(tmp_path) -> None:
    from dislomob.evaluate.models import load_evaluated_model
    from dislomob.evaluate.test_sets import by_trajectory, load_test_set, unseen

    cfg, graphs = _setup(tmp_path)
    em = load_evaluated_model(cfg, "train", tmp_path / "register", tmp_path / "train")
    assert em.train_ids == SPLIT["train"] and em.seen_ids == SPLIT["train"] + SPLIT["val"]
    pool = by_trajectory([g for gs in graphs.values() for g in gs])
    test = load_test_set("split", cfg, pool, tmp_path / "train", tmp_path / "none", tmp_path / "none")
    kept, dropped = unseen(test, ["te1", "tr0"])
    assert sorted(kept) == ["te0", "te2"] and dropped == ["te1"]
    with pytest.raises(InputFileError, match="no registered champion"):
        load_evaluated_model(cfg, "champion", tmp_path / "register", tmp_path / "train")
    del pool["te2"]
    with pytest.raises(InputFileError, match=r"\['te2'\]"):
        load_test_set("split", cfg, pool, tmp_path / "train", tmp_path / "none", tmp_path / "none")
    with pytest.raises(ConfigError, match="evaluate.angle_bin_edges_deg"):
        parse_config({"evaluate": {"angle_bin_edges_deg": [0, 90, 45]}})
    with pytest.raises(ConfigError, match="evaluate.model"):
        parse_config({"evaluate": {"model": "newest"}})
