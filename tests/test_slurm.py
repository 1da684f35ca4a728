"""MD through a real one-node Slurm cluster (Debian's slurmd, slurmctld, munge) with Parsl's SlurmProvider.

The fixture starts the cluster of ``pipelines/cluster/local_slurm.py`` in a temporary folder and stops it at the
end. Without Slurm installed the tests skip with the line saying how to enable them; with
``DISLOMOB_REQUIRE_SLURM=1`` (set by ``.ci/run``) a missing Slurm fails instead.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from dislomob.config import Config, parse_config
from dislomob.md.dataset import initial_specs
from dislomob.md.run import cached_run, run_key, should_run
from dislomob.md.trajectory import read_meta, read_trajectory

ROOT = Path(__file__).resolve().parents[1]
ENABLE = "apt-get install slurmd slurmctld munge slurm-client (as root) to run the Slurm tests"

pytestmark = [pytest.mark.slurm]


def _local_slurm():
    spec = importlib.util.spec_from_file_location("local_slurm", ROOT / "pipelines" / "cluster" / "local_slurm.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["local_slurm"] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


LS = _local_slurm()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    missing = LS.missing_commands()
    if missing:
        if os.environ.get("DISLOMOB_REQUIRE_SLURM") == "1":
            pytest.fail(f"DISLOMOB_REQUIRE_SLURM=1 but Slurm is missing ({', '.join(missing)}): {ENABLE}")
        pytest.skip(f"Slurm not installed: {ENABLE}")
    root = tmp_path_factory.mktemp("slurm")
    c = LS.start(root, cpus=2)
    old = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(c.conf)
    try:
        yield c
    finally:
        if old is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = old
        LS.stop(root)


TINY_MD = {"duration_ps": 0.3, "equilibrate_ps": 0.1, "settle_ps": 0.05, "minimize_steps": 100, "threads": 1,
           "box": {"glide_nm": 3.0, "line_nm": 1.0, "height_nm": 6.0}}
CANCEL_SETTLE_PS = 20.0  # a tiny run of ~30 s: long enough to be cancelled mid-run
WALLTIME_SETTLE_PS = 60.0  # ~1.5 min: beyond Slurm's smallest walltime (1 min)


def _params(tmp: Path, name: str, kind: str = "slurm", walltime: str = "00:10:00", **md) -> Path:
    data = Config().model_dump()
    data["md"].update({**TINY_MD, **md})
    data["dataset"].update({"temperatures_k": [300.0], "stresses_gpa": [0.5], "angles_deg": [0.0, 90.0],
                            "out_dir": str(tmp / name / "md")})
    data["executor"].update({"kind": kind, "workers": 2, "run_dir": str(tmp / name / "parsl"),
                             "slurm": {"address": "127.0.0.1", "runs_per_node": 2, "cores_per_run": 1,
                                       "walltime": walltime}})
    p = tmp / name / "params.yaml"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(yaml.safe_dump(data))
    return p


def _simulate(params: Path, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dislomob.cli", "--params", str(params), "simulate", "--quiet"],
                          capture_output=True, text=True, env=env, timeout=timeout)


def _start_simulate(params: Path, env: dict) -> subprocess.Popen:
    """`dislomob simulate` on ``params`` in the background (output piped)."""
    return subprocess.Popen([sys.executable, "-m", "dislomob.cli", "--params", str(params), "simulate", "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _jobs(env: dict) -> list[str]:
    """Slurm jobs queued or running."""
    return subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True, env=env).stdout.split()


def _completed_jobs(env: dict) -> dict[str, tuple[str, str]]:
    """Job id -> (name, state) from the job completion log (``sacct -c``)."""
    out = subprocess.run(["sacct", "-c", "-n", "-P", "-o", "JobID,JobName,State"], capture_output=True, text=True,
                         env=env, check=True).stdout
    return {f[0]: (f[1], f[2]) for f in (line.split("|") for line in out.splitlines()) if len(f) >= 3}


def _leftovers(run_dir: Path) -> list[str]:
    """Live processes that name ``run_dir`` on their command line or in their open files (Parsl's interchange by its
    log, worker pools and their submit scripts)."""
    from test_faults_md import naming

    return naming(run_dir)


def _wait_for_running_job(env: dict, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(["squeue", "-h", "-t", "R", "-o", "%i"], capture_output=True, text=True, env=env).stdout
        if out.split():
            return out.split()[0]
        time.sleep(0.5)
    raise AssertionError("no Slurm job started running")


def _metas(md_dir: Path) -> list:
    return [read_meta(p) for p in sorted(md_dir.glob("*.h5"))]


def test_the_cluster_keeps_its_traffic_on_loopback(cluster) -> None:
    """slurmd and srun bind to 127.0.0.1 only; slurmctld binds every address (slurm.conf(5)), and as root its port
    is closed to every interface but loopback; a job runs."""
    pids = LS.daemon_pids(cluster.root)
    slurmd = LS._pid(cluster.root / "slurmd.pid")
    assert len(pids) == 3 and LS.listening_addresses([slurmd]) == {"127.0.0.1"}
    out = subprocess.run(["srun", "-N1", "-n1", "hostname"], capture_output=True, text=True, env=cluster.env,
                         timeout=60)
    assert out.returncode == 0 and out.stdout.strip()
    if os.geteuid() == 0:
        port = int(next(line.split("=")[1] for line in cluster.conf.read_text().splitlines()
                        if line.startswith("SlurmctldPort=")))
        assert LS.guarded_ports(cluster.root) == [port]


@pytest.mark.slow
def test_simulate_through_slurm_gives_the_local_executors_runs(cluster, tmp_path) -> None:
    """The same tiny grid through Slurm and through the local executor: same run keys, the same frames to the bit
    (LAMMPS and DXA are deterministic for a seed on one thread), the Slurm job in ``sacct``, nothing left behind."""
    before = set(_completed_jobs(cluster.env))
    slurm = _simulate(_params(tmp_path, "slurm"), cluster.env)
    assert slurm.returncode == 0, slurm.stderr[-3000:]
    local = _simulate(_params(tmp_path, "local", kind="local"), cluster.env)
    assert local.returncode == 0, local.stderr[-3000:]
    names = sorted(p.name for p in (tmp_path / "slurm" / "md").glob("*.h5"))
    cfg = parse_config(yaml.safe_load((tmp_path / "slurm" / "params.yaml").read_text()))
    assert names == sorted(f"{run_key(s, cfg.md, cfg.material)}.h5" for s in initial_specs(cfg))
    assert names == sorted(p.name for p in (tmp_path / "local" / "md").glob("*.h5"))
    for name in names:
        a, b = read_trajectory(tmp_path / "slurm" / "md" / name), read_trajectory(tmp_path / "local" / "md" / name)
        assert a.meta.status == b.meta.status == "ok" and len(a.frames) == len(b.frames) > 2
        for fa, fb in zip(a.frames, b.frames):
            np.testing.assert_array_equal(fa.cell, fb.cell)
            np.testing.assert_array_equal(fa.lattice_u, fb.lattice_u)
            assert len(fa.lines) == len(fb.lines)
            for la, lb in zip(fa.lines, fb.lines):
                np.testing.assert_array_equal(la.points, lb.points)
    new = {j: v for j, v in _completed_jobs(cluster.env).items() if j not in before}
    assert new and all(name.startswith("parsl") for name, _ in new.values()), new
    assert not _jobs(cluster.env) and not _leftovers(tmp_path / "slurm" / "parsl")


@pytest.mark.slow
def test_a_two_rank_md_run_through_slurm(cluster, tmp_path) -> None:
    """``md.ranks: 2`` inside a Slurm block of 2 cores per run: the run completes on 2 ranks (its note event says
    so) and the trajectory has the same run key as on 1 rank."""
    params = _params(tmp_path, "ranks", ranks=2)
    data = yaml.safe_load(params.read_text())
    data["dataset"]["angles_deg"] = [90.0]
    data["executor"]["slurm"].update({"runs_per_node": 1, "cores_per_run": 2})
    params.write_text(yaml.safe_dump(data))
    before = set(_completed_jobs(cluster.env))
    out = _simulate(params, cluster.env)
    assert out.returncode == 0, out.stderr[-3000:]
    cfg = parse_config(data)
    path = tmp_path / "ranks" / "md" / f"{run_key(initial_specs(cfg)[0], cfg.md, cfg.material)}.h5"
    traj = read_trajectory(path)
    assert traj.meta.status == "ok" and len(traj.frames) > 2
    assert any(e.kind == "note" and "2 MPI ranks" in e.detail for e in traj.meta.events), traj.meta.events
    assert set(_completed_jobs(cluster.env)) - before and not _jobs(cluster.env)


@pytest.mark.slow
def test_a_job_cancelled_mid_run_is_transient_with_its_reason_and_runs_again(cluster, tmp_path) -> None:
    params = _params(tmp_path, "cancel", settle_ps=CANCEL_SETTLE_PS)
    proc = _start_simulate(params, cluster.env)
    job = _wait_for_running_job(cluster.env)
    time.sleep(5)  # the MD is under way
    subprocess.run(["scancel", job], check=True, env=cluster.env)
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 1, err[-3000:]
    metas = _metas(tmp_path / "cancel" / "md")
    assert len(metas) == 2
    for m in metas:
        assert m.status == "failed" and m.failure_class == "transient"
        assert f"slurm job {job} CANCELLED" in m.failure_reason, m.failure_reason
    assert not _jobs(cluster.env) and not _leftovers(tmp_path / "cancel" / "parsl")
    # the next request runs them again, to the end
    again = _simulate(params, cluster.env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert all(m.status in ("ok", "cut") and m.attempts == 2 for m in _metas(tmp_path / "cancel" / "md"))
    assert not _jobs(cluster.env) and not _leftovers(tmp_path / "cancel" / "parsl")


@pytest.mark.slow
@pytest.mark.parametrize("sig", ["SIGTERM", "SIGKILL"])
def test_a_killed_stage_leaves_no_slurm_job_behind(cluster, tmp_path, sig) -> None:
    """SIGTERM: the stage cancels its Slurm jobs as it unwinds. SIGKILL: nothing can run then, so the job is left
    until the next start of a batch on the same run folder cancels it (the process record holds its id)."""
    import signal

    params = _params(tmp_path, "kill", settle_ps=CANCEL_SETTLE_PS)
    with open(tmp_path / "kill.log", "w") as log:  # a file, not a pipe: orphans of a SIGKILL would hold a pipe open
        proc = subprocess.Popen([sys.executable, "-m", "dislomob.cli", "--params", str(params), "simulate", "--quiet"],
                                stdout=log, stderr=subprocess.STDOUT, env=cluster.env)
    job = _wait_for_running_job(cluster.env)
    time.sleep(2)
    proc.send_signal(getattr(signal, sig))
    proc.wait(timeout=60)
    if sig == "SIGTERM":
        assert proc.returncode == 128 + signal.SIGTERM
        deadline = time.monotonic() + 30
        while _jobs(cluster.env) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not _jobs(cluster.env) and not _leftovers(tmp_path / "kill" / "parsl")
        return
    assert job in _jobs(cluster.env)  # a SIGKILLed stage cannot cancel anything
    data = yaml.safe_load(params.read_text())
    data["dataset"]["angles_deg"] = [90.0]  # the next batch on the same run folder: one of the two runs
    params.write_text(yaml.safe_dump(data))
    again = _simulate(params, cluster.env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert _completed_jobs(cluster.env)[job][1] == "CANCELLED"
    assert not _jobs(cluster.env) and not _leftovers(tmp_path / "kill" / "parsl")


@pytest.mark.slow
def test_walltime_exceeded_is_transient_with_its_reason(cluster, tmp_path) -> None:
    """A block whose walltime (1 min, Slurm's smallest) ends mid-run: both runs transient with TIMEOUT, to be run
    again by the next request (a real rerun after a failure: the slurmctld test)."""
    params = _params(tmp_path, "walltime", walltime="00:01:00", settle_ps=WALLTIME_SETTLE_PS)
    first = _simulate(params, cluster.env, timeout=300)
    assert first.returncode == 1, first.stderr[-3000:]
    metas = _metas(tmp_path / "walltime" / "md")
    assert len(metas) == 2 and all(m.failure_class == "transient" and "TIMEOUT" in m.failure_reason for m in metas), \
        [m.failure_reason for m in metas]
    assert not _jobs(cluster.env) and not _leftovers(tmp_path / "walltime" / "parsl")
    assert all(should_run(cached_run(p)) for p in (tmp_path / "walltime" / "md").glob("*.h5"))


@pytest.mark.slow
def test_a_node_that_drops_the_job_is_transient(cluster, tmp_path) -> None:
    params = _params(tmp_path, "node", settle_ps=CANCEL_SETTLE_PS)
    proc = _start_simulate(params, cluster.env)
    job = _wait_for_running_job(cluster.env)
    time.sleep(3)
    try:
        subprocess.run(["scontrol", "update", f"NodeName={LS.NODE}", "State=DOWN", "Reason=dislomob-test"], check=True,
                       env=cluster.env)
        _, err = proc.communicate(timeout=180)
    finally:
        subprocess.run(["scontrol", "update", f"NodeName={LS.NODE}", "State=RESUME"], env=cluster.env)
    assert proc.returncode == 1, err[-3000:]
    metas = _metas(tmp_path / "node" / "md")
    assert len(metas) == 2 and all(m.failure_class == "transient" and f"slurm job {job} NODE_FAIL" in m.failure_reason
                                   for m in metas), [m.failure_reason for m in metas]
    assert not _jobs(cluster.env) and not _leftovers(tmp_path / "node" / "parsl")
    LS.wait_idle(cluster)


@pytest.mark.slow
def test_slurmctld_down_at_submission_is_transient_and_runs_once_it_is_back(cluster, tmp_path) -> None:
    params = _params(tmp_path, "ctld")
    LS.stop_controller(cluster)
    try:
        down = _simulate(params, cluster.env, timeout=300)
    finally:
        LS.start_controller(cluster)
    assert down.returncode == 1, down.stderr[-3000:]
    metas = _metas(tmp_path / "ctld" / "md")
    assert len(metas) == 2 and all(m.failure_class == "transient" and "sbatch" in m.failure_reason.lower()
                                   for m in metas), [m.failure_reason for m in metas]
    assert not _leftovers(tmp_path / "ctld" / "parsl")
    LS.wait_idle(cluster)
    up = _simulate(params, cluster.env)
    assert up.returncode == 0, up.stderr[-3000:]
    assert all(m.status == "ok" and m.attempts == 2 for m in _metas(tmp_path / "ctld" / "md"))


@pytest.mark.slow
def test_an_active_learning_iteration_runs_its_candidate_md_through_slurm(cluster, tmp_path) -> None:
    """The AL campaign's MD (fixed test run, calibration run, pool candidates) is dispatched by the same executor:
    with ``executor.kind: slurm`` every new run comes from a Slurm job and the iteration completes."""
    import json

    from test_active_loop import _tiny

    from dislomob.active.loop import run_strategy
    from dislomob.features.featurize import featurize_dataset
    from dislomob.md.dataset import simulate_dataset

    base = _tiny(tmp_path)
    cfg = base.model_copy(update={
        "executor": base.executor.model_copy(update={"kind": "slurm", "slurm": base.executor.slurm.model_copy(
            update={"address": "127.0.0.1", "runs_per_node": 2, "cores_per_run": 1})}),
        "active": base.active.model_copy(update={"max_iterations": 0})})
    before = set(_completed_jobs(cluster.env))
    simulate_dataset(cfg, tmp_path / "md", progress=False)
    featurize_dataset(cfg, tmp_path / "md", tmp_path / "graphs", tmp_path / "featurize.json")
    grid_jobs = set(_completed_jobs(cluster.env)) - before
    out = run_strategy(cfg, "active", initial_graphs_dir=tmp_path / "graphs", md_dir=tmp_path / "al_md",
                       graphs_dir=tmp_path / "al_graphs", work_dir=tmp_path / "al", progress=False)
    al_jobs = set(_completed_jobs(cluster.env)) - before - grid_jobs
    rec = json.loads((tmp_path / "al" / "active" / "record.json").read_text())
    assert out["iterations"] == 1 and rec["stopped"]["reason"] == "max_iterations"
    assert grid_jobs and al_jobs, (grid_jobs, al_jobs)
    assert len([m for m in _metas(tmp_path / "al_md") if m.status in ("ok", "cut")]) == 4  # test, calibration, pool of 2
    assert not _jobs(cluster.env) and not _leftovers(tmp_path / "parsl")
