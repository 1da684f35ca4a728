"""The active / passive learning loop on a tiny real configuration: real LAMMPS + DXA runs of ~1-2k atoms,
featurized and trained for a few epochs; both strategies share the MD runs; MLflow parent and child runs;
resume after a stop continues from the last completed iteration."""

from __future__ import annotations

import json

import mlflow
import pytest

from dislomob.active import candidates as cand
from dislomob.active.loop import compare, run_strategy, spearman
from dislomob.active.pool import prepare_runs
from dislomob.config import Config, parse_config
from dislomob.features.featurize import featurize_dataset
from dislomob.md.dataset import simulate_dataset

pytestmark = pytest.mark.slow


def _tiny(tmp) -> Config:
    data = Config().model_dump(mode="json")
    data["md"].update({"duration_ps": 0.4, "equilibrate_ps": 0.1, "settle_ps": 0.0, "minimize_steps": 100,
                       "threads": 1, "box": {"glide_nm": 3.0, "line_nm": 1.0, "height_nm": 6.0}})
    data["dataset"].update({"temperatures_k": [300.0], "stresses_gpa": [0.5], "angles_deg": [0.0, 45.0, 90.0],
                            "out_dir": str(tmp / "md")})
    data["executor"].update({"workers": 2, "run_dir": str(tmp / "parsl")})
    data["features"].update({"dt_ps": 0.1, "images": 1, "line_images": 1, "out_dir": str(tmp / "graphs")})
    data["train"].update({"members": 4, "width": 6, "depth": 1, "epochs": 3, "batch_size": 8, "tuned_params": None,
                          "tracking_uri": f"sqlite:///{tmp}/mlflow/mlflow.db"})
    data["active"].update({"pool_size": 2, "select": 1, "max_iterations": 1, "test_trajectories": 1, "calibration_trajectories": 1,
                           "temperature_range_k": [300.0, 600.0], "stress_range_gpa": [0.4, 0.8],
                           "threshold": 1e-6, "noise_floor_angstrom": 1e-9})  # steps of 0.1 ps move tiny lines
    # by far less than the demo's 0.7 A noise floor: spread / floor could fall below any threshold; with a
    # vanishing floor the score is the members' relative disagreement, which stays far above 1e-6
    return parse_config(data)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("al")
    cfg = _tiny(tmp)
    simulate_dataset(cfg, tmp / "md", progress=False)
    featurize_dataset(cfg, tmp / "md", tmp / "graphs", tmp / "featurize.json")
    return cfg, tmp


def _runs(cfg, tmp):
    mlflow.set_tracking_uri(cfg.train.tracking_uri)
    exp = mlflow.get_experiment_by_name(cfg.active.experiment)
    return mlflow.search_runs([exp.experiment_id], output_format="list")


def test_spearman_matches_known_rank_correlations() -> None:
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]) == pytest.approx(0.8)  # 1 - 6*4/(5*24)
    assert spearman([1, 2], [1, 2]) is None and spearman([1, 1, 1], [1, 2, 3]) is None


def test_both_strategies_share_md_log_to_mlflow_and_resume(tiny) -> None:
    cfg, tmp = tiny
    paths = dict(initial_graphs_dir=tmp / "graphs", md_dir=tmp / "al_md", graphs_dir=tmp / "al_graphs",
                 work_dir=tmp / "al", progress=False)
    first = run_strategy(cfg.model_copy(update={"active": cfg.active.model_copy(update={"max_iterations": 0})}),
                         "active", **paths)
    rec = json.loads((tmp / "al" / "active" / "record.json").read_text())
    # queries as the paper counts them: the 3 grid runs and the first pool of 2 (then 1 refill per iteration)
    assert first["iterations"] == 1 and rec["stopped"]["reason"] == "max_iterations" and first["n_queries"] == 5
    # the same command with a larger budget continues after the last completed iteration: iteration 0 is kept
    model0 = (tmp / "al" / "active" / "iter_000" / "ensemble.pt").read_bytes()
    active = run_strategy(cfg, "active", **paths)
    assert (tmp / "al" / "active" / "iter_000" / "ensemble.pt").read_bytes() == model0
    assert active["iterations"] == 2 and active["n_queries"] == 6 and not active["reached"]
    md_after_active = sorted(p.name for p in (tmp / "al_md").glob("*.h5"))
    passive = run_strategy(cfg, "passive", **paths)
    assert passive["iterations"] == 2 and passive["n_queries"] == 6
    md_after_both = sorted(p.name for p in (tmp / "al_md").glob("*.h5"))
    # one test run, one calibration run, two pool candidates, one refill: the passive strategy ran no MD of its own
    assert md_after_both == md_after_active and len(md_after_both) == 5
    test_key = cand.test_set(1, cfg.active.test_seed, cfg.active)[0]
    rec = json.loads((tmp / "al" / "passive" / "record.json").read_text())
    assert rec["iterations"][0]["pool"] == [0, 1] and rec["iterations"][1]["pool"][-1] == 2
    assert all(len(it["selected_ids"]) == (1 if it["iteration"] == 0 else 0) for it in rec["iterations"])
    table = json.loads((tmp / "al" / "passive" / "iter_000" / "candidates.json").read_text())
    assert [c["stream_index"] for c in table["candidates"]] == [0, 1]
    assert table["candidates"][0]["temperature_k"] == cand.candidate(0, cfg.active.candidate_seed, cfg.active).temperature_k
    assert test_key.temperature_k != table["candidates"][0]["temperature_k"]
    for c in table["candidates"]:
        assert c["score"] > 0 and c["error_median"] >= 0
    # scores are the raw spread times the factor fitted on the held-out calibration run, which never trains
    from dislomob.md.run import run_key

    factor = rec["iterations"][0]["metrics"]["spread_calibration"]
    assert factor > 0 and all(c["score"] == pytest.approx(factor * c["score_raw"], rel=1e-9) for c in table["candidates"])
    cal_id = run_key(cand.calibration_set(1, cfg.active.test_seed, cfg.active)[0], cfg.md, cfg.material)
    assert (tmp / "al_md" / f"{cal_id}.h5").is_file() and cal_id != run_key(test_key, cfg.md, cfg.material)
    assert all(cal_id not in it["selected_ids"] and cal_id not in rec["split"]["train"] for it in rec["iterations"])
    runs = _runs(cfg, tmp)
    parents = {r.data.tags["strategy"]: r for r in runs if "strategy" in r.data.tags}
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert set(parents) == {"active", "passive"} and all(p.info.status == "FINISHED" for p in parents.values())
    assert len(children) == 4 and all(c.info.status == "FINISHED" for c in children)
    assert all(k in children[0].data.metrics for k in ("n_queries", "test_error_median", "uncertainty_rel_max",
                                                       "md_seconds", "train_seconds", "n_train_trajectories"))
    # training curves belong to the iteration's child run, not to the parent
    assert "train_loss" not in parents["active"].data.metrics and "train_loss" in children[0].data.metrics
    client = mlflow.MlflowClient()
    hist = client.get_metric_history(parents["active"].info.run_id, "test_error_median")
    assert sorted(h.step for h in hist) == [5, 6]
    summary = compare({"active": active, "passive": passive})
    assert summary["saving_pct"] is None and summary["active"]["reached"] is False


def _params_file(cfg, tmp) -> str:
    import yaml

    path = tmp / "params_al.yaml"
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
    return str(path)


def test_cli_offline_loop_survives_kill_9_and_reports(tiny) -> None:
    """`dislomob al --offline` killed with -9 at a random moment, then rerun, completes from its record; the
    report compares both strategies (metrics, DVC plots rows, PNG)."""
    import os
    import random
    import signal
    import subprocess
    import sys
    import time

    from dislomob.cli import main

    cfg, tmp = tiny
    params = _params_file(cfg, tmp)
    common = ["--md-dir", str(tmp / "al_md"), "--graphs-dir", str(tmp / "al_graphs"), "--initial-graphs",
              str(tmp / "graphs"), "--work-dir", str(tmp / "al_cli"), "--offline", "--quiet"]
    md_before = sorted(p.name for p in (tmp / "al_md").glob("*.h5"))
    seed = int(os.environ.get("DISLOMOB_KILL_SEED", time.time_ns() % 2**32))
    delay = random.Random(seed).uniform(3.0, 20.0)
    args = [sys.executable, "-m", "dislomob.cli", "--params", params, "al", "--strategy", "active", *common,
            "--metrics", str(tmp / "m" / "al_active.json")]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    for s in ("active", "passive"):
        assert main(["--params", params, "al", "--strategy", s, *common, "--metrics", str(tmp / "m" / f"al_{s}.json")]) == 0, (seed, delay)
    rec = json.loads((tmp / "al_cli" / "active" / "record.json").read_text())
    assert [it["iteration"] for it in rec["iterations"]] == [0, 1], (seed, delay)
    assert sorted(p.name for p in (tmp / "al_md").glob("*.h5")) == md_before  # offline: no MD
    assert not any(r.info.status == "RUNNING" for r in _runs(cfg, tmp)), (seed, delay)
    out = tmp / "report"
    assert main(["--params", params, "al-report", "--metrics-dir", str(tmp / "m"), "--out", str(out / "al.json"),
                 "--plots-dir", str(out / "plots"), "--png", str(out / "al.png")]) == 0
    m = json.loads((out / "al.json").read_text())
    assert set(m) == {"active", "passive", "saving_pct"}
    assert {"queries_to_threshold", "iterations", "reached", "test_error_median"} <= set(m["active"])
    rows = json.loads((out / "plots" / "al_passive.json").read_text())
    assert [r["n_queries"] for r in rows] == [5, 6] and all("test_error_median" in r for r in rows)
    assert (out / "al.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_mlflow_server_serves_parent_and_child_runs_over_rest(tiny) -> None:
    """A real `mlflow server` on loopback serves the AL parent runs, their children and metric histories."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.request
    from pathlib import Path

    cfg, tmp = tiny
    paths = dict(initial_graphs_dir=tmp / "graphs", md_dir=tmp / "al_md", graphs_dir=tmp / "al_graphs",
                 work_dir=tmp / "al_rest", progress=False)
    for s in ("active", "passive"):
        run_strategy(cfg, s, **paths)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mlflow_bin = str(Path(sys.executable).parent / "mlflow")
    server = subprocess.Popen([mlflow_bin, "server", "--backend-store-uri", cfg.train.tracking_uri, "--host", "127.0.0.1",
                               "--port", str(port), "--workers", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"

    def call(path: str, body: dict | None = None) -> dict:
        req = urllib.request.Request(base + path, data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    try:
        deadline = time.time() + 90
        while True:
            try:
                urllib.request.urlopen(base + "/health", timeout=2)
                break
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    raise
                time.sleep(1)
        exp = call(f"/api/2.0/mlflow/experiments/get-by-name?experiment_name={cfg.active.experiment}")["experiment"]
        runs = call("/api/2.0/mlflow/runs/search", {"experiment_ids": [exp["experiment_id"]], "max_results": 1000})["runs"]
        tags = [{t["key"]: t["value"] for t in r["data"].get("tags", [])} for r in runs]
        parents = {t["strategy"]: r for r, t in zip(runs, tags) if "strategy" in t and "mlflow.parentRunId" not in t}
        assert {"active", "passive"} <= set(parents)
        for s, parent in parents.items():
            pid = parent["info"]["run_id"]
            kids = [r for r, t in zip(runs, tags) if t.get("mlflow.parentRunId") == pid]
            assert len(kids) >= 2, s
            hist = call(f"/api/2.0/mlflow/metrics/get-history?run_id={pid}&metric_key=test_error_median")["metrics"]
            assert sorted({int(h["step"]) for h in hist}) == [5, 6] and all(h["value"] >= 0 for h in hist)
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_failed_candidate_is_dropped_with_its_reason_and_counted_and_the_loop_seed_is_kept(tiny, caplog) -> None:
    """A candidate whose real MD blew up (50 fs steps) sits in the cache at its key: the loop drops it with
    the failure reason, refills the pool from the stream, counts it as a query (its MD was paid for), and a
    loop seed other than the params' seed is recorded and tagged while the data stay the same."""
    import shutil

    from dislomob.md.dispatch import run_batch
    from dislomob.md.run import run_key

    cfg, tmp = tiny
    md = tmp / "al_md_fail"
    md.mkdir()
    for p in (tmp / "al_md").glob("*.h5"):  # the runs other tests made: the cache is shared by content
        shutil.copy(p, md / p.name)
    spec = cand.candidate(1, cfg.active.candidate_seed, cfg.active)
    bad_md = cfg.md.model_copy(update={"timestep_fs": 50.0, "duration_ps": 4.0})
    (bad,) = run_batch([spec], cfg, tmp / "bad_md", progress=False, md=[bad_md])
    shutil.copy(bad, md / f"{run_key(spec, cfg.md, cfg.material)}.h5")
    summary = run_strategy(cfg, "passive", initial_graphs_dir=tmp / "graphs", md_dir=md, graphs_dir=tmp / "al_graphs_fail",
                           work_dir=tmp / "al_fail", progress=False, seed=99)
    rec = json.loads((tmp / "al_fail" / "passive" / "record.json").read_text())
    first = rec["iterations"][0]
    assert first["pool"] == [0, 2] and list(first["dropped"]) == ["1"]
    assert "failed" in first["dropped"]["1"] and any(w in first["dropped"]["1"] for w in ("Lost atoms", "too far", "temperature"))
    assert first["metrics"]["n_queries"] == 3 + 3 and summary["n_queries"] == 7
    assert any("candidate 1" in r.getMessage() and "dropped" in r.getMessage() and "failed" in r.getMessage()
               for r in caplog.records)
    from dislomob.active.loop import initial_split
    from dislomob.train.data import load_graph_dir

    by_traj: dict[str, list] = {}
    for g in load_graph_dir(tmp / "graphs"):
        by_traj.setdefault(str(g.traj_id), []).append(g)
    assert rec["seed"] == 99 and rec["split"] == initial_split(by_traj, cfg)  # the data split ignores the loop seed
    parent = [r for r in _runs(cfg, tmp) if r.data.tags.get("seed") == "99"]
    assert len(parent) == 1 and parent[0].data.tags["strategy"] == "passive"
    with pytest.raises(ValueError, match="seed=5 not allowed"):
        run_strategy(cfg, "passive", initial_graphs_dir=tmp / "graphs", md_dir=md, graphs_dir=tmp / "al_graphs_fail",
                     work_dir=tmp / "al_fail", progress=False, seed=5)


def test_offline_loop_refuses_an_incomplete_fixed_test_set(tiny) -> None:
    """Offline, a test run the caches lack is an error naming it (a test set that grew between iterations
    would not be fixed), not a silently smaller test set; nothing is trained or recorded."""
    from dislomob.errors import InputFileError
    from dislomob.md.run import run_key

    cfg, tmp = tiny
    missing = run_key(cand.test_set(1, cfg.active.test_seed, cfg.active)[0], cfg.md, cfg.material)
    with pytest.raises(InputFileError, match=f"test set incomplete.*{missing}"):
        run_strategy(cfg, "active", initial_graphs_dir=tmp / "graphs", md_dir=tmp / "no_md", graphs_dir=tmp / "no_graphs",
                     work_dir=tmp / "al_incomplete", progress=False, simulate=False)
    assert not list((tmp / "al_incomplete").rglob("*.pt")) and not (tmp / "al_incomplete" / "active" / "record.json").exists()


def test_offline_loop_stopped_by_a_partial_refill_continues_with_the_same_candidates(tiny) -> None:
    """Pool 3, select 2: iteration 1 needs candidates 3 and 4; with only 3 in the cache the loop stops
    (stream_exhausted) without keeping a half-filled pool, and once 4 exists it continues with pool
    [the one left, 3, 4]: no candidate of the stream is skipped."""
    import shutil

    from dislomob.md.run import run_key

    cfg, tmp = tiny
    ac = cfg.active.model_copy(update={"pool_size": 3, "select": 2, "max_iterations": 1})
    cfg = cfg.model_copy(update={"active": ac})
    src, md, graphs = tmp / "al_md_src", tmp / "al_md_partial", tmp / "al_graphs_partial"
    src.mkdir()
    for p in (tmp / "al_md").glob("*.h5"):
        shutil.copy(p, src / p.name)
    held = cand.test_set(1, ac.test_seed, ac) + cand.calibration_set(1, ac.test_seed, ac)
    stream = cand.candidates(0, 5, ac.candidate_seed, ac)
    prepare_runs(held + stream, cfg, src, tmp / "al_graphs_src", progress=False)  # MD the cache lacks
    md.mkdir()
    for spec in held + stream[:4]:
        name = f"{run_key(spec, cfg.md, cfg.material)}.h5"
        shutil.copy(src / name, md / name)
    prepare_runs(held + stream[:4], cfg, md, graphs, progress=False, simulate=False, featurize=True)
    paths = dict(initial_graphs_dir=tmp / "graphs", md_dir=md, graphs_dir=graphs, work_dir=tmp / "al_partial",
                 progress=False, simulate=False)
    first = run_strategy(cfg, "active", **paths)
    rec = json.loads((tmp / "al_partial" / "active" / "record.json").read_text())
    assert first["stop_reason"] == "stream_exhausted" and first["iterations"] == 1
    assert rec["next_stream_index"] == 3 and len(rec["iterations"][0]["pool_left"]) == 1
    left = rec["iterations"][0]["pool_left"][0]
    name = f"{run_key(stream[4], cfg.md, cfg.material)}.h5"
    shutil.copy(src / name, md / name)
    prepare_runs(stream[4:], cfg, md, graphs, progress=False, simulate=False, featurize=True)
    second = run_strategy(cfg, "active", **paths)
    rec = json.loads((tmp / "al_partial" / "active" / "record.json").read_text())
    assert second["iterations"] == 2 and rec["iterations"][1]["pool"] == [left, 3, 4]
    assert second["n_queries"] == 3 + 5 and rec["stopped"]["reason"] == "max_iterations"
