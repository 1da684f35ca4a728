"""MD on several MPI ranks (``md.ranks``, ``dislomob.md.mpi_run``): same run key, same physics, same failure
records as on one rank, nothing listening beyond loopback and no process left behind."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
from conftest import small_config

from dislomob.config import Config, ConfigError, load_config, parse_config
from dislomob.md.analysis import dipole_symmetry, summarize
from dislomob.md.run import RunSpec, cached_run, run_key, simulate
from dislomob.md.trajectory import read_meta, read_trajectory

ROOT = Path(__file__).resolve().parents[1]
TINY = {"glide_nm": 3.0, "line_nm": 1.0, "height_nm": 6.0}


def test_run_key_does_not_depend_on_ranks():
    cfg = Config()
    for spec in (RunSpec(300.0, 0.5, 90.0), RunSpec(500.0, 0.25, 35.0, geometry="loop", seed=7)):
        one = run_key(spec, cfg.md, cfg.material)
        assert one == run_key(spec, cfg.md.model_copy(update={"ranks": 2}), cfg.material)
        assert one == run_key(spec, cfg.md.model_copy(update={"ranks": 64}), cfg.material)


def test_keys_of_runs_in_the_repository_are_unchanged():
    """Every cached replica run (AL-benchmark MD settings) keeps the key it was stored under, at any rank count."""
    cfg = load_config(ROOT / "pipelines/al_benchmark/params.yaml")
    files = sorted((ROOT / "datasets/replicas/md").glob("*.h5"))
    assert files
    for f in files:
        m = read_meta(f)
        spec = RunSpec(m.temperature_k, m.stress_gpa, m.requested_angle_deg, m.geometry, m.seed)
        for ranks in (1, 2):
            assert run_key(spec, cfg.md.model_copy(update={"ranks": ranks}), cfg.material) == f.stem


@pytest.mark.parametrize("value", [0, -2, 100_001])
def test_bad_rank_count_is_a_clear_error(value):
    data = Config().model_dump()
    data["md"]["ranks"] = value
    with pytest.raises(ConfigError, match=rf"md\.ranks = {value}: Input should be"):
        parse_config(data)


@pytest.mark.slow
def test_two_ranks_give_the_same_physics_as_one(tmp_path):
    """A 100 K, 0.8 GPa edge dipole (4 x 2 x 8 nm, 5.6k atoms; 1 ps settling, 1 ps recorded) on 1 and on 2 ranks.

    Two ranks may sum forces in another order, so the runs may part like replicas of the same seed; the
    bound is the replica scatter. Edges at low T and high stress scatter least (0.5% of the speed at 171 K /
    0.99 GPa in the replica benchmark, BENCHMARKS.md "Replicas and floors"); in this small, short cell three
    1-rank replicas (seeds 1234, 11, 12) gave 1430, 1437 and 1478 m/s (range 3.3% of the mean), so the mean
    speed and each line's speed must agree within 5%. (Measured on 2026-12-07: 1 and 2 ranks agreed to 1e-15;
    a broken decomposition or a mis-ordered gather changes the speed by far more, or loses the lines.) The
    first frame (same minimization and velocities, atoms gathered in id order) has the same atom count and box.
    """
    box = {"glide_nm": 4.0, "line_nm": 2.0, "height_nm": 8.0}
    runs = {}
    for ranks in (1, 2):
        cfg = small_config(duration_ps=1.0, equilibrate_ps=0.3, settle_ps=1.0, threads=1, ranks=ranks, box=box)
        runs[ranks] = read_trajectory(simulate(RunSpec(100.0, 0.8, 90.0), cfg.md, cfg.material, tmp_path / str(ranks)))
    one, two = runs[1], runs[2]
    assert one.meta.key == two.meta.key
    assert one.meta.status == two.meta.status == "ok" and two.meta.lattice_reference == "measured"
    assert len(one.frames) == len(two.frames) == 11
    assert one.meta.n_atoms == two.meta.n_atoms > 5000
    assert np.allclose(one.frames[0].cell, two.frames[0].cell, rtol=0, atol=1e-3)
    assert np.allclose(one.frames[0].origin, two.frames[0].origin, rtol=0, atol=1e-3)
    assert [e.kind for e in one.meta.events] == [] and [e.kind for e in two.meta.events] == ["note"]
    assert "2 MPI ranks" in two.meta.events[0].detail
    s1, s2 = dipole_symmetry(one), dipole_symmetry(two)
    print(f"edge 100 K 0.8 GPa: 1 rank {s1.speed_m_s:.0f} m/s, 2 ranks {s2.speed_m_s:.0f} m/s")
    assert s1.speed_m_s > 1000
    assert abs(s2.speed_m_s - s1.speed_m_s) <= 0.05 * s1.speed_m_s
    v1 = sorted(abs(s.velocity_m_s) for s in summarize(one))
    v2 = sorted(abs(s.velocity_m_s) for s in summarize(two))
    assert np.allclose(v1, v2, rtol=0.05)
    assert abs(two.meta.measured_stress_gpa - one.meta.measured_stress_gpa) < 0.05


def _run_is_failed(path: Path, failure_class: str) -> object:
    meta = read_meta(path)
    assert meta.status == "failed" and meta.failure_class == failure_class
    assert meta.events[-1].kind == "failed" and meta.events[-1].detail.startswith(failure_class)
    return meta


@pytest.mark.slow
def test_failures_on_two_ranks_are_recorded_like_on_one(tmp_path):
    """A blown-up run (50 fs steps at 1000 K): the same physics failure and reason on 1 and 2 ranks."""
    reasons = {}
    for ranks in (1, 2):
        cfg = small_config(duration_ps=4.0, equilibrate_ps=0.1, threads=1, ranks=ranks, timestep_fs=50.0, box=TINY)
        path = simulate(RunSpec(1000.0, 0.5, 90.0), cfg.md, cfg.material, tmp_path / str(ranks))
        reasons[ranks] = _run_is_failed(path, "physics").failure_reason
        assert cached_run(path).state == "failed_physics"
        assert not list((tmp_path / str(ranks)).glob(".*"))
    assert reasons[1] == reasons[2] and "Lost atoms" in reasons[2]


@pytest.mark.slow
def test_missing_launcher_is_a_transient_failure(tmp_path, monkeypatch):
    monkeypatch.setenv("DISLOMOB_MPIEXEC", str(tmp_path / "no-such-mpiexec"))
    cfg = small_config(duration_ps=0.2, equilibrate_ps=0.1, threads=1, ranks=2, box=TINY)
    meta = _run_is_failed(simulate(RunSpec(300.0, 0.5, 90.0), cfg.md, cfg.material, tmp_path), "transient")
    assert "MPILaunchError" in meta.failure_reason and "no-such-mpiexec" in meta.failure_reason


def _listening(pid: int) -> list[str]:
    from test_faults_md import listening

    return listening(pid)


def _start_long_run(tmp_path: Path) -> subprocess.Popen:
    script = (
        "import sys; sys.path.insert(0, sys.argv[2])\n"
        "from conftest import small_config\n"
        "from dislomob.md.run import RunSpec, simulate\n"
        f"cfg = small_config(duration_ps=60.0, equilibrate_ps=0.1, threads=1, ranks=2, box={TINY!r})\n"
        "simulate(RunSpec(300.0, 0.5, 90.0), cfg.md, cfg.material, sys.argv[1])\n"
    )
    return subprocess.Popen([sys.executable, "-c", script, str(tmp_path), str(Path(__file__).parent)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _ranks_of(proc: subprocess.Popen, timeout_s: float = 60.0) -> list[psutil.Process]:
    t_end = time.time() + timeout_s
    while time.time() < t_end:
        kids = psutil.Process(proc.pid).children(recursive=True)
        if sum("dislomob.md.mpi_run" in " ".join(k.cmdline()) for k in kids) >= 3:  # launcher + 2 ranks
            return kids
        time.sleep(0.1)
    raise AssertionError("the 2-rank MD did not start")


def _alive(procs: list[psutil.Process]) -> list[int]:
    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p.pid)
        except psutil.NoSuchProcess:
            pass
    return out


@pytest.mark.slow
@pytest.mark.parametrize("how", ["sigkill_parent", "sigint_parent", "kill_launcher"])
def test_no_rank_outlives_the_run_and_nothing_listens_beyond_loopback(tmp_path, how):
    """The parent killed (SIGKILL: no cleanup runs) or interrupted, or the launcher killed: every rank ends;
    a killed launcher is a transient failure. While the ranks run, none of them listens on TCP."""
    proc = _start_long_run(tmp_path)
    try:
        kids = _ranks_of(proc)
        time.sleep(3)  # MPI up, LAMMPS running
        assert len(_alive(kids)) == len(kids)
        seen = [a for k in kids for a in _listening(k.pid)]
        assert seen == [], f"MD on 2 ranks listens: {seen}"
        if how == "kill_launcher":
            launcher = next(k for k in kids if "mpiexec" in k.name())
            launcher.send_signal(signal.SIGKILL)
            assert proc.wait(timeout=60) == 0, proc.stderr.read()
            meta = _run_is_failed(next(tmp_path.glob("*.h5")), "transient")
            assert "SIGKILL" in meta.failure_reason
        else:
            proc.send_signal(signal.SIGKILL if how == "sigkill_parent" else signal.SIGINT)
            proc.wait(timeout=120)  # a bound against a hang, not a timing check (a loaded CI machine took > 30 s)
        t_end = time.time() + 10
        while _alive(kids) and time.time() < t_end:
            time.sleep(0.1)
        assert _alive(kids) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
