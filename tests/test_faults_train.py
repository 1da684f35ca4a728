"""Fault injection, train side: damaged ensemble files are named, MLflow runs left RUNNING by a killed
process are ended at the next start, and kill -9 / SIGTERM at random moments of `train` then a rerun give
byte-identical outputs with nothing RUNNING and last_good.pt / run.json from the same run."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time

import pytest

from dislomob.cli import main
from faults_helpers import REPO, damage, snapshot_files, write_dataset, write_params


@pytest.mark.parametrize("how", ["truncated", "empty", "junk"])
def test_damaged_ensemble_file_is_named(tmp_path, how):
    import torch

    from dislomob.errors import InputFileError
    from dislomob.model.ensemble import load_ensemble

    path = tmp_path / "ensemble.pt"
    path.write_bytes(b"")
    if how != "empty":
        torch.save({"format_version": 0, "state_dict": {"w": torch.zeros(1000)}}, path)
        damage(path, how)
    with pytest.raises(InputFileError, match="ensemble.pt: unreadable ensemble file"):
        load_ensemble(path)
    with pytest.raises(InputFileError, match="not found"):
        load_ensemble(tmp_path / "nope.pt")


def test_orphaned_running_runs_are_marked_killed(tmp_path):
    from mlflow.tracking import MlflowClient

    from dislomob.tracking import end_orphaned_runs, owner_tags as _owner_tags

    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    client = MlflowClient()
    exp = client.create_experiment("e", artifact_location=(tmp_path / "a").as_uri())
    dead = subprocess.Popen(["true"])
    dead.wait()
    host = socket.gethostname()
    runs = {
        "dead": {"dislomob.pid": str(dead.pid), "dislomob.host": host, "dislomob.pid_start": "1"},
        "alive": _owner_tags(),
        "reused_pid": {**_owner_tags(), "dislomob.pid_start": "12345"},  # our PID, another process's start
        "other_host": {"dislomob.pid": str(dead.pid), "dislomob.host": host + "-elsewhere"},
        "untagged": {},
    }
    ids = {name: client.create_run(exp, tags=tags).info.run_id for name, tags in runs.items()}
    ended = end_orphaned_runs(exp)
    assert sorted(ended) == sorted([ids["dead"], ids["reused_pid"]])
    status = {name: client.get_run(i).info.status for name, i in ids.items()}
    assert status == {"dead": "KILLED", "alive": "RUNNING", "reused_pid": "KILLED", "other_host": "RUNNING",
                      "untagged": "RUNNING"}
    mlflow.set_tracking_uri("")


def _runs(tmp) -> dict[str, str]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp}/mlflow/mlflow.db")
    exp = client.get_experiment_by_name("dislomob-train")
    return {r.info.run_id: r.info.status for r in client.search_runs([exp.experiment_id], max_results=1000)}


def _running(tmp) -> list[str]:
    """Run ids with status RUNNING, read straight from the sqlite store (cheap enough to poll)."""
    import sqlite3

    db = tmp / "mlflow" / "mlflow.db"
    if not db.is_file():
        return []
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.2) as con:
            return [r[0] for r in con.execute("SELECT run_uuid FROM runs WHERE status = 'RUNNING'")]
    except sqlite3.Error:
        return []


def _run_seconds(tmp, run_id: str) -> float:
    from mlflow.tracking import MlflowClient

    info = MlflowClient(tracking_uri=f"sqlite:///{tmp}/mlflow/mlflow.db").get_run(run_id).info
    return (info.end_time - info.start_time) / 1000.0


def _model_outputs(tmp) -> dict[str, bytes]:
    return {k: v for k, v in snapshot_files(tmp / "models").items() if k != "run.json"}


def _check_run_json(tmp) -> str:
    run = json.loads((tmp / "models" / "run.json").read_text())
    for name, digest in run["sha256"].items():
        assert hashlib.sha256((tmp / "models" / name).read_bytes()).hexdigest() == digest, name
    assert set(run["sha256"]) >= {"ensemble.pt", "last_good.pt"}
    return run["mlflow_run_id"]


@pytest.mark.slow
def test_kill_train_at_random_moments_then_rerun_converges(tmp_path):
    write_dataset(tmp_path / "md")
    p = write_params(tmp_path)
    assert main(["--params", str(p), "featurize", "--summary", str(tmp_path / "featurize.json")]) == 0
    args = [sys.executable, "-m", "dislomob.cli", "--params", str(p), "train", "--metrics", str(tmp_path / "train.json"),
            "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    ref = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=180, env=env)
    assert ref.returncode == 0, ref.stderr[-2000:]
    wall = time.perf_counter() - t0
    reference = _model_outputs(tmp_path)
    assert {"ensemble.pt", "last_good.pt", "baseline.json", "split.json"} <= set(reference)
    ref_run = _check_run_json(tmp_path)
    run_s = _run_seconds(tmp_path, ref_run)
    seed = int(os.environ.get("DISLOMOB_KILL_SEED", time.time_ns() % 2**32))
    rng = random.Random(seed)
    kills: list = [("DISLOMOB_KILL_SEED", seed)]  # every assertion message carries the seed to rerun it
    signalled: list[tuple[set[str], float]] = []  # (the runs the killed process opened, signal time in ms)
    # two kills at a random moment while the MLflow run is open (training, writing), one at any moment
    for sig, in_run in ((signal.SIGKILL, True), (signal.SIGTERM, True), (signal.SIGKILL, False)):
        (tmp_path / "models" / ".ensemble.pt.dead.pt.tmp").write_bytes(b"partial")  # as a killed write leaves it
        before = set(_runs(tmp_path))
        proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        t1 = time.perf_counter()
        if in_run:
            while proc.poll() is None and not (set(_running(tmp_path)) - before) and time.perf_counter() - t1 < 120:
                time.sleep(0.05)
            delay = rng.uniform(0.0, 0.8) * run_s  # inside the run even when it runs faster than the reference
        else:
            delay = rng.uniform(0.0, 1.0) * wall
        signalled_ms = None
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            signalled_ms = time.time() * 1000.0
            proc.send_signal(sig)
        status = proc.wait(timeout=60)
        kills.append((sig.name, round(time.perf_counter() - t1, 1), status))
        if sig == signal.SIGTERM and signalled_ms is not None:
            # our handler unwinds like Ctrl-C, through Lightning's sys.exit(1) too: 130, or 0 if it was already exiting
            assert status in (0, 130), kills
        if signalled_ms is not None:
            signalled.append((set(_runs(tmp_path)) - before, signalled_ms))
        # nothing lost: the previous ensemble is still there, byte for byte
        assert (tmp_path / "models" / "ensemble.pt").read_bytes() == reference["ensemble.pt"], kills
    rerun = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=180, env=env)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert _model_outputs(tmp_path) == reference, kills
    assert not list(tmp_path.rglob("*.tmp")), kills
    runs = _runs(tmp_path)
    assert "RUNNING" not in runs.values(), (kills, runs)
    last = _check_run_json(tmp_path)
    assert runs[last] == "FINISHED" and runs[ref_run] == "FINISHED" and last != ref_run
    # a run interrupted while open ends KILLED (by its own SIGTERM handler, or at the next start after kill -9);
    # it may end FINISHED only if it had ended before the signal was sent
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow/mlflow.db")
    for run_ids, signalled_ms in signalled:
        for run_id in run_ids:
            info = client.get_run(run_id).info
            assert info.status == "KILLED" or (info.status == "FINISHED" and info.end_time <= signalled_ms), (
                kills, run_id, info.status, info.end_time, signalled_ms)
    assert "KILLED" in runs.values(), (kills, runs)  # at least one kill landed inside an open run
    print("kills (signal, delay s, exit status):", kills, "runs:", sorted(runs.values()))


def test_an_interrupt_that_lightning_turns_into_sys_exit_is_still_an_interrupt():
    """Lightning's Trainer answers a KeyboardInterrupt (our SIGTERM handler raises one) with sys.exit(1): the run it
    interrupts must end KILLED, not FAILED; a plain exit or an error is no interrupt."""
    from dislomob.tracking import interrupted

    with pytest.raises(SystemExit) as caught:
        try:
            raise KeyboardInterrupt("signal 15")
        except KeyboardInterrupt:
            sys.exit(1)
    assert interrupted(caught.value) and interrupted(KeyboardInterrupt())
    assert not interrupted(SystemExit(1)) and not interrupted(ValueError("bad")) and not interrupted(SystemExit(0))
