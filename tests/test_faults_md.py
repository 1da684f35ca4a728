"""Fault injection on the simulate side: failed runs, unreadable files, kills, bad --out, sockets.

Everything runs for real at tiny size (1k-atom dipoles, well under a second of MD each): LAMMPS,
OVITO and Parsl are never mocked. Faults are injected from outside, as they happen: a Parsl
worker killed with SIGKILL in the middle of its MD, the stage killed with SIGKILL or SIGTERM at a
random moment, junk or truncated trajectory files, an output path that cannot be written.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
import yaml

from dislomob.cli import main
from dislomob.config import Config, parse_config
from dislomob.md.dataset import exit_status, initial_specs
from dislomob.md.dispatch import run_batch
from dislomob.md.procs import RECORD_DIR
from dislomob.md.run import RunSpec, cached_run, run_key, simulate
from dislomob.md.trajectory import Trajectory, read_meta, read_trajectory, write_trajectory

TINY_MD = {"duration_ps": 0.3, "equilibrate_ps": 0.1, "settle_ps": 0.05, "minimize_steps": 100, "threads": 1,
           "box": {"glide_nm": 3.0, "line_nm": 1.0, "height_nm": 6.0}}
STAGE_TIMEOUT_S = 150


def tiny_data(tmp_path: Path, workers: int = 2, **md) -> dict:
    """The demo config as a dict with tiny MD, a 2-run grid (screw + edge at 300 K, 0.5 GPa), Parsl run dir in tmp."""
    data = Config().model_dump()
    data["md"].update({**TINY_MD, **md})
    data["dataset"].update({"temperatures_k": [300.0], "stresses_gpa": [0.5], "angles_deg": [0.0, 90.0],
                            "out_dir": str(tmp_path / "md")})
    data["executor"].update({"workers": workers, "run_dir": str(tmp_path / "parsl")})
    return data


def write_params(tmp_path: Path, workers: int = 2, **md) -> Path:
    p = tmp_path / "params.yaml"
    p.write_text(yaml.safe_dump(tiny_data(tmp_path, workers, **md)))
    return p


def cli(params: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "dislomob.cli", "--params", str(params), "simulate", "--quiet", *args]


def alive(pid: int, create_time: float) -> bool:
    try:
        p = psutil.Process(pid)
        return abs(p.create_time() - create_time) < 0.05 and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def recorded(run_dir: Path) -> list[tuple[int, float]]:
    """Every (pid, start time) in the process records under ``run_dir`` (owners included)."""
    out = []
    for f in (run_dir / RECORD_DIR).glob("*.json"):
        try:
            data = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        out.append((data["owner"]["pid"], data["owner"]["create_time"]))
        out += [(e["pid"], e["create_time"]) for e in data["procs"]]
    return out


def naming(run_dir: Path) -> list[str]:
    """Live processes whose command line or open files name ``run_dir`` (worker pools, scripts, the interchange's log)."""
    needle = str(run_dir.resolve()) + os.sep
    out = []
    for p in psutil.process_iter(["pid", "cmdline", "status"]):
        cmd = " ".join(p.info["cmdline"] or [])
        try:
            if p.info["status"] != psutil.STATUS_ZOMBIE and (
                    needle in cmd or any(f.path.startswith(needle) for f in p.open_files())):
                out.append(f"{p.pid} {cmd[:100]}")
        except psutil.Error:
            continue
    return out


def expected_files(tmp_path: Path, **md) -> set[str]:
    cfg = parse_config(tiny_data(tmp_path, **md))
    return {f"{run_key(s, cfg.md, cfg.material)}.h5" for s in initial_specs(cfg)}


def _addr(hexaddr: str) -> str:
    ip, port = hexaddr.split(":")
    raw = bytes.fromhex(ip)
    if len(raw) == 4:
        return f"{socket.inet_ntop(socket.AF_INET, raw[::-1])}:{int(port, 16)}"
    words = b"".join(struct.pack(">I", struct.unpack("<I", raw[i:i + 4])[0]) for i in range(0, 16, 4))
    return f"[{socket.inet_ntop(socket.AF_INET6, words)}]:{int(port, 16)}"


def listening(pid: int) -> list[str]:
    """Local addresses of the TCP sockets process ``pid`` listens on (from /proc)."""
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                t = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if t.startswith("socket:["):
                inodes.add(t[8:-1])
        out = []
        for table in ("tcp", "tcp6"):
            for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
                f = line.split()
                if f[3] == "0A" and f[9] in inodes:
                    out.append(_addr(f[1]))
        return out
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return []


def loopback(addr: str) -> bool:
    host = addr.rsplit(":", 1)[0].strip("[]")
    return host.startswith("127.") or host in ("::1", "::ffff:127.0.0.1")


def has_lammps(pid: int) -> bool:
    try:
        return "liblammps" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


# --- metadata that cannot be read must not stop anything ------------------------------------------------------------

def _meta_only(tmp_path: Path, **update) -> Path:
    cfg = parse_config(tiny_data(tmp_path))
    from dislomob.md.run import _base_meta

    meta = _base_meta(RunSpec(300.0, 0.5, 90.0), cfg.md, cfg.material, "k", None).model_copy(update=update)
    path = tmp_path / "m.h5"
    write_trajectory(path, Trajectory(meta, []))
    return path


def test_non_finite_metadata_round_trips(tmp_path):
    path = _meta_only(tmp_path, duration_ps=float("inf"), measured_stress_gpa=float("nan"), status="failed",
                      failure_class="physics", failure_reason="x")
    meta = read_meta(path)
    assert meta.duration_ps == float("inf") and meta.measured_stress_gpa != meta.measured_stress_gpa
    assert cached_run(path).state == "failed_physics"


@pytest.mark.parametrize("damage", ["junk", "empty", "truncated", "null_duration"])
def test_unreadable_cache_file_is_named_and_treated_as_absent(tmp_path, damage):
    path = _meta_only(tmp_path)
    if damage == "junk":
        path.write_bytes(b"not a trajectory" * 10)
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:700])
    else:  # what an inf duration used to leave: metadata JSON with null where a number belongs
        import h5py

        with h5py.File(path, "r+") as h5:
            h5.attrs["metadata"] = h5.attrs["metadata"].replace('"duration_ps":0.3', '"duration_ps":null')
    c = cached_run(path)
    assert c.state == "unreadable" and c.reason
    from dislomob.md.run import should_run

    assert should_run(c) and should_run(c, retry_failed=True)


@pytest.mark.slow
def test_unreadable_file_in_the_cache_is_rerun_by_the_stage(tmp_path, caplog):
    cfg = parse_config(tiny_data(tmp_path, workers=1))
    spec = RunSpec(300.0, 0.5, 90.0)
    out = tmp_path / "md"
    out.mkdir()
    bad = out / f"{run_key(spec, cfg.md, cfg.material)}.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)  # an HDF5 signature and nothing else
    (out / f".{bad.name}.x1y2.h5.tmp").write_bytes(b"left by a killed write")
    with caplog.at_level("WARNING"):
        batch = run_batch([spec], cfg, out, progress=False)
    assert bad.name in caplog.text and "cannot be read" in caplog.text
    assert batch.ran == [bad] and bad in batch.unreadable
    meta = read_meta(bad)
    assert meta.status == "ok" and meta.events[0].kind == "retry" and "unreadable" in meta.events[0].detail
    assert not list(out.glob(".*.tmp"))


# --- failure classes ---------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_physics_failure_stays_failed_until_retry_failed(tmp_path, capsys):
    params = write_params(tmp_path, workers=1, timestep_fs=50.0, duration_ps=4.0)  # 50 fs: atoms fly apart
    out = tmp_path / "hot.h5"
    args = ["--params", str(params), "simulate", "--temperature-k", "1000", "--stress-gpa", "0.5", "--angle-deg", "90",
            "--out", str(out), "--quiet"]
    assert main(args) == 1
    meta = read_meta(out)
    assert meta.status == "failed" and meta.failure_class == "physics" and meta.attempts == 1
    assert any(w in meta.failure_reason for w in ("Lost atoms", "too far", "temperature"))
    cached = tmp_path / f"{meta.key}.h5"
    stamp = cached.stat().st_mtime_ns
    capsys.readouterr()
    assert main(args) == 1  # asked again: the recorded failure is the answer, no MD
    assert cached.stat().st_mtime_ns == stamp
    text = capsys.readouterr()
    assert "physics" in text.out and "--retry-failed" in text.err
    assert main([*args, "--retry-failed"]) == 1  # explicitly asked: run again (and fail again)
    again = read_meta(out)
    assert cached.stat().st_mtime_ns != stamp and again.attempts == 2
    assert again.events[0].kind == "retry" and "failed_physics" in again.events[0].detail


@pytest.mark.slow
def test_killed_worker_is_a_transient_failure_retried_on_the_next_request(tmp_path):
    cfg = parse_config(tiny_data(tmp_path, duration_ps=0.6))
    specs = initial_specs(cfg)
    run_dir = tmp_path / "parsl"
    killed: list[int] = []

    def kill_one_worker_in_md():  # the fault: SIGKILL the first Parsl worker seen running LAMMPS
        t_end = time.time() + 60
        while not killed and time.time() < t_end:
            for pid, ct in recorded(run_dir):
                if pid != os.getpid() and alive(pid, ct) and has_lammps(pid):
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_one_worker_in_md, daemon=True)
    killer.start()
    first = run_batch(specs, cfg, tmp_path / "md", progress=False)
    killer.join(5)
    assert killed, "no worker was seen running LAMMPS"
    metas = {p: read_meta(p) for p in first}
    lost = [p for p, m in metas.items() if m.status == "failed"]
    assert len(lost) == 1, {p.name: (m.status, m.failure_reason) for p, m in metas.items()}
    m = metas[lost[0]]
    assert m.failure_class == "transient" and m.failure_reason.startswith("worker:")
    assert [m.status for p, m in metas.items() if p not in lost] == ["ok"]
    assert not [r for r in recorded(run_dir)] and not naming(run_dir)  # the batch left nothing running
    second = run_batch(specs, cfg, tmp_path / "md", progress=False)  # the next request: only the lost run
    assert second.ran == lost and set(second.reused) == set(first) - set(lost)
    m = read_meta(lost[0])
    assert m.status == "ok" and m.attempts == 2 and m.events[0].kind == "retry"


def test_exit_status_policy():
    base = {"n_ok": 3, "n_cut": 1, "n_failed_physics": 0, "n_failed_transient": 0}
    assert exit_status(base) == 0
    assert exit_status({**base, "n_failed_physics": 2}) == 0  # recorded physics failures: the dataset is complete
    assert exit_status({**base, "n_failed_transient": 1}) == 1  # rerun retries
    assert exit_status({**base, "n_ok": 0, "n_cut": 0, "n_failed_physics": 4}) == 1  # nothing usable


# --- --out --------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", ["parent_is_file", "grandparent_is_file", "out_is_folder", "not_h5", "stage_out_dir_is_file"])
def test_bad_out_fails_before_any_md(tmp_path, capsys, case):
    params = write_params(tmp_path, workers=1)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file in the way")
    run = ["--temperature-k", "300", "--stress-gpa", "0.5", "--angle-deg", "90"]
    out, needle = {
        "parent_is_file": (["--out", str(blocker / "edge.h5")], "blocker"),
        "grandparent_is_file": (["--out", str(blocker / "sub" / "edge.h5")], "blocker"),
        "out_is_folder": (["--out", str(tmp_path)], None),
        "not_h5": (["--out", str(tmp_path / "edge.txt")], ".h5"),
        "stage_out_dir_is_file": (["--out-dir", str(blocker)], "blocker"),
    }[case]
    if case == "out_is_folder":
        (tmp_path / "x.h5").mkdir()
        out, needle = ["--out", str(tmp_path / "x.h5")], "folder"
    t0 = time.perf_counter()
    rc = main(["--params", str(params), "simulate", *([] if case.startswith("stage") else run), *out, "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and needle in err and err.count("\n") == 1, err
    assert time.perf_counter() - t0 < 10
    assert not [p for p in tmp_path.rglob("*.h5") if p.is_file()] and not (tmp_path / "md").exists()


@pytest.mark.slow
def test_cached_run_is_copied_not_moved_and_md_opens_no_external_socket(tmp_path):
    params = write_params(tmp_path, workers=1)
    out = tmp_path / "a" / "edge.h5"
    args = ["--temperature-k", "300", "--stress-gpa", "0.5", "--angle-deg", "90", "--out", str(out)]
    proc = subprocess.Popen(cli(params, *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen, samples_with_lammps = set(), 0
    t_end = time.time() + 120
    while proc.poll() is None and time.time() < t_end:
        seen.update(listening(proc.pid))
        samples_with_lammps += has_lammps(proc.pid)
        time.sleep(0.02)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert samples_with_lammps >= 5, "LAMMPS was not seen running: the socket check saw nothing"
    assert all(loopback(a) for a in seen), f"MD listened beyond loopback: {sorted(seen)}"
    key = read_meta(out).key
    cached = out.parent / f"{key}.h5"
    assert cached.is_file() and cached.read_bytes() == out.read_bytes()
    stamp = cached.stat().st_mtime_ns
    # README's own example, repeated: served from the cache (no MD), the cache keeps its file
    for target in (out, out.parent / "copy.h5"):
        r = subprocess.run(cli(params, *args[:-1], str(target)), capture_output=True, text=True, timeout=STAGE_TIMEOUT_S)
        assert r.returncode == 0, r.stderr
        assert cached.stat().st_mtime_ns == stamp and target.read_bytes() == cached.read_bytes()


# --- kills ---------------------------------------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("sig,seed,when", [(signal.SIGKILL, 1, "random"), (signal.SIGKILL, 2, "random"),
                                           (signal.SIGTERM, 3, "in_md")])
def test_killed_stage_leaves_no_orphans_and_the_rerun_converges(tmp_path, sig, seed, when):
    params = write_params(tmp_path, duration_ps=0.6)
    run_dir, md = tmp_path / "parsl", tmp_path / "md"
    rng = random.Random(seed)
    # random: anywhere from Parsl's start to the middle of the MD; in_md: once a worker runs LAMMPS, plus up to 1 s
    delay = rng.uniform(1.0, 8.0) if when == "random" else 60.0
    log = (tmp_path / "killed.log").open("w")  # not a pipe: orphans would hold it open
    proc = subprocess.Popen(cli(params), stdout=log, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        t_end = time.time() + delay
        snapshot: set[tuple[int, float]] = set()
        while time.time() < t_end and proc.poll() is None:
            snapshot.update(recorded(run_dir))
            if when == "in_md" and any(has_lammps(pid) for pid, _ in snapshot):
                delay = 60.0 - (t_end - time.time())
                time.sleep(rng.uniform(0.0, 1.0))
                break
            time.sleep(0.05)
        snapshot.update(recorded(run_dir))
        proc.send_signal(sig)
        t_sig = time.time()
        proc.wait(timeout=60)
        log.close()
        err = (tmp_path / "killed.log").read_text()
        time.sleep(0.5)
        print(f"{sig.name} after {delay:.2f} s; exit {proc.returncode} after {time.time() - t_sig - 0.5:.2f} s; "
              f"{len(snapshot)} processes recorded, {sum(alive(*p) for p in snapshot)} alive 0.5 s later")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    if sig == signal.SIGTERM:
        assert proc.returncode == 128 + signal.SIGTERM, err
        assert "stopped by signal 15" in err
        assert not [p for p in snapshot if alive(*p)], "SIGTERM left processes running"
        assert not naming(run_dir) and not list((run_dir / RECORD_DIR).glob("*.json"))
    kept = {p.name: p.stat().st_mtime_ns for p in md.glob("*.h5")} if md.is_dir() else {}
    rerun = subprocess.run(cli(params), capture_output=True, text=True, timeout=STAGE_TIMEOUT_S)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "2 ok" in rerun.stdout
    # nothing left running: not what the killed stage recorded, not anything naming its run folder
    assert not [p for p in snapshot if alive(*p)], "a process of the killed stage survived the rerun"
    assert not naming(run_dir) and not list((run_dir / RECORD_DIR).glob("*.json"))
    # converged: exactly the grid's runs, all readable and ok; finished runs of the killed stage kept as they were
    index = json.loads((md / "index.json").read_text())
    assert {p.name for p in md.glob("*.h5")} == expected_files(tmp_path, duration_ps=0.6) == {r["file"] for r in index["runs"]}
    assert index["n_ok"] == 2 and index["exit_status"] == 0
    assert all(read_trajectory(md / r["file"]).meta.status == "ok" for r in index["runs"])
    assert all((md / n).stat().st_mtime_ns == t for n, t in kept.items() if read_meta(md / n).status == "ok")
    assert not list(md.glob(".*.tmp"))
