"""Processes a batch of MD runs starts through Parsl, recorded so that none outlives the stage.

Parsl's local HighThroughputExecutor starts an interchange (a child of ours) and a worker pool in
a process group of its own (``LocalProvider``: ``bash`` + ``setpgrp``) that is re-parented to
init. Neither ends by itself when the stage dies. So, while Parsl is up:

- the stage makes itself the "child subreaper" of its descendants (Linux ``prctl``), so that the
  worker pool stays in its process tree, and records every process it started (pid + start time,
  and the worker pools' process groups) in ``<executor.run_dir>/dislomob-procs/<owner pid>.json``,
  refreshed four times a second by a thread;
- SIGTERM, SIGINT and SIGHUP unwind the batch through Parsl's own cleanup (exit status 128 +
  signal number); should that take more than 15 s, a watchdog ends the recorded processes and
  the stage (Parsl's cleanup waits on the interchange without a timeout in places);
- at the end of the batch (normal or not) every recorded process still alive is ended and the
  record removed;
- a stage killed with SIGKILL cannot do any of this: the next start (``reap_stale``) ends what a
  dead owner left, matched by pid *and* start time so that a reused pid is never hit, and removes
  the record. A record whose owner is still alive (a concurrent stage) is left alone.
  When no live stage uses the run folder, Parsl processes that name it (worker pools and their
  submit scripts on their command line, the interchange by its open log file) are ended too: they
  can only be leftovers (of a kill within the first quarter second of Parsl's start, before they
  were recorded).
- On Slurm the worker pools run in Slurm jobs (Parsl's blocks), not in our process tree: the record
  also holds their job ids and the ``SLURM_CONF`` they were submitted with, and ending the batch,
  or reaping a dead owner's record, cancels them with ``scancel`` (a job already gone is no error).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import psutil

from dislomob.atomic import atomic_path
from dislomob.md.slurm_jobs import cancel_slurm_jobs

RECORD_DIR = "dislomob-procs"


def record_dir(run_dir: str | Path) -> Path:
    """The folder holding the process records of batches that use ``run_dir``."""
    return Path(run_dir) / RECORD_DIR


def _same_process(pid: int, create_time: float) -> psutil.Process | None:
    """The live process ``pid`` if it is the one that started at ``create_time`` (not a reused pid)."""
    try:
        p = psutil.Process(pid)
        if abs(p.create_time() - create_time) < 0.05 and p.status() != psutil.STATUS_ZOMBIE:
            return p
    except (psutil.NoSuchProcess, psutil.AccessDenied, ProcessLookupError):
        pass
    return None


def _group_members(pgids: set[int], not_before: float) -> list[psutil.Process]:
    """Live processes in any of ``pgids`` that started at or after ``not_before`` (guards against pgid reuse)."""
    out = []
    if not pgids:
        return out
    me = os.getpid()
    for p in psutil.process_iter(["pid", "create_time"]):
        try:
            if p.pid != me and os.getpgid(p.pid) in pgids and p.info["create_time"] >= not_before - 0.05:
                out.append(p)
        except (ProcessLookupError, psutil.Error, OSError):
            continue
    return out


def end_processes(procs: list[psutil.Process], grace_s: float = 3.0) -> list[str]:
    """SIGTERM ``procs``, then SIGKILL what is still alive after ``grace_s``; returns 'pid cmd' of each ended."""
    procs = [p for p in {p.pid: p for p in procs}.values() if p.pid != os.getpid()]
    names = []
    for p in procs:
        try:
            names.append(f"{p.pid} {' '.join(p.cmdline())[:120]}")
            p.terminate()
        except psutil.Error:
            continue
    _, alive = psutil.wait_procs(procs, timeout=grace_s)
    for p in alive:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=grace_s)
    return names


def _recorded_alive(data: dict) -> list[psutil.Process]:
    procs = [p for e in data.get("procs", []) if (p := _same_process(int(e["pid"]), float(e["create_time"])))]
    procs += _group_members({int(g) for g in data.get("pgids", [])}, float(data["owner"]["create_time"]))
    return procs


def reap_stale(run_dir: str | Path) -> list[str]:
    """End every process recorded under ``run_dir`` by a batch whose owner is gone; returns what was ended.

    An unreadable record (a kill in the middle of its write cannot leave one: records are written
    atomically) is removed.
    """
    ended: list[str] = []
    d = record_dir(run_dir)
    if not d.is_dir():
        return ended
    for f in sorted(d.glob("*.json")):
        try:
            data = json.loads(f.read_text())
            owner = data["owner"]
        except (OSError, ValueError, KeyError, TypeError):
            f.unlink(missing_ok=True)
            continue
        if _same_process(int(owner["pid"]), float(owner["create_time"])) is not None:
            continue  # a live batch (this one or a concurrent stage): not ours to end
        ended += cancel_slurm_jobs(data.get("slurm_jobs", []), data.get("slurm_conf"))
        ended += end_processes(_recorded_alive(data))
        f.unlink(missing_ok=True)
    if not live_owners(run_dir):
        ended += end_processes(_naming(Path(run_dir)))
    return ended


def _naming(run_dir: Path) -> list[psutil.Process]:
    """Parsl processes (not this one) whose command line or open files name a path inside ``run_dir``.

    Worker pools and submit scripts carry it on their command line; the interchange (renamed
    "parsl: HTEX interchange") holds its log file there open.
    """
    needle = str(run_dir.resolve()) + os.sep
    out = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if p.pid == os.getpid() or "parsl" not in cmd:
            continue
        try:
            if needle in cmd or any(f.path.startswith(needle) for f in p.open_files()):
                out.append(p)
        except psutil.Error:
            continue
    return out


def _set_subreaper(on: bool) -> None:
    """While on, orphaned descendants (Parsl's worker pool) are re-parented to this process, not init (Linux)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(36, int(on), 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def live_owners(run_dir: str | Path) -> list[dict]:
    """Records of batches under ``run_dir`` whose owner process is alive (besides this process)."""
    out = []
    d = record_dir(run_dir)
    for f in sorted(d.glob("*.json")) if d.is_dir() else []:
        try:
            data = json.loads(f.read_text())
            o = data["owner"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if int(o["pid"]) != os.getpid() and _same_process(int(o["pid"]), float(o["create_time"])):
            out.append(data)
    return out


def _descendants() -> list[psutil.Process]:
    try:
        return psutil.Process().children(recursive=True)
    except psutil.Error:
        return []


def _ctime(p: psutil.Process) -> float | None:
    try:
        return p.create_time()
    except psutil.Error:
        return None


class ProcessRecord:
    """The record of one batch's Parsl processes; see the module docstring."""

    def __init__(self, run_dir: str | Path, out_dir: str | Path) -> None:
        me = psutil.Process()
        self.path = record_dir(run_dir) / f"{me.pid}.json"
        self.owner = {"pid": me.pid, "create_time": me.create_time()}
        self.out_dir = str(Path(out_dir).resolve())
        self.t0 = me.create_time()  # psutil's clock (boot time + ticks) is not time.time(): compare like with like
        self.preexisting = {(k.pid, _ctime(k)) for k in _descendants()}
        self.procs: dict[int, float] = {}
        self.pgids: set[int] = set()
        self.executors: list = []
        self.slurm_jobs: set[str] = set()
        self._lock = threading.RLock()
        self._written: str | None = None
        _set_subreaper(True)

    def refresh(self) -> None:
        """Record our new descendants and the process groups of the local providers' worker pools."""
        with self._lock:
            kids = [k for k in _descendants() if (k.pid, _ctime(k)) not in self.preexisting]
            me_pgid = os.getpgrp()
            for k in kids:
                try:
                    if os.getpgid(k.pid) != me_pgid:
                        self.pgids.add(os.getpgid(k.pid))  # LocalProvider's setpgrp: a worker pool's group
                except (ProcessLookupError, OSError, psutil.Error):
                    pass
            for ex in self.executors:
                for job in (getattr(getattr(ex, "provider", None), "resources", None) or {}).values():
                    pid = job.get("remote_pid") if isinstance(job, dict) else None
                    try:
                        if pid:
                            self.pgids.add(os.getpgid(int(pid)))
                    except (ProcessLookupError, OSError, ValueError):
                        pass
            for ex in self.executors:
                provider = getattr(ex, "provider", None)
                if type(provider).__name__ == "SlurmProvider":
                    self.slurm_jobs.update(str(j) for j in (getattr(provider, "resources", None) or {}))
            members = _group_members(self.pgids, self.t0)
            for p in kids + members:
                ct = _ctime(p)
                if ct is not None:
                    self.procs[p.pid] = ct
            data = {
                "owner": self.owner,
                "out_dir": self.out_dir,
                "procs": [{"pid": pid, "create_time": ct} for pid, ct in sorted(self.procs.items())],
                "pgids": sorted(self.pgids),
                "slurm_jobs": sorted(self.slurm_jobs),
                "slurm_conf": os.environ.get("SLURM_CONF"),
            }
            text = json.dumps(data, indent=1)
            if text != self._written:
                with atomic_path(self.path, suffix=".json") as tmp:
                    tmp.write_text(text)
                self._written = text

    def end_all(self) -> list[str]:
        """End every recorded process still alive (and new members of the recorded groups)."""
        try:
            self.refresh()
        except OSError:
            pass
        with self._lock:
            procs = [p for pid, ct in self.procs.items() if (p := _same_process(pid, ct))]
            procs += _group_members(self.pgids, self.t0)
            jobs = sorted(self.slurm_jobs)
        return cancel_slurm_jobs(jobs, os.environ.get("SLURM_CONF")) + end_processes(procs)

    def close(self) -> list[str]:
        """End what is left and remove the record."""
        ended = self.end_all()
        self.path.unlink(missing_ok=True)
        _set_subreaper(False)
        return ended


@contextmanager
def recorded_processes(run_dir: str | Path, out_dir: str | Path, cleanup_grace_s: float = 15.0) -> Iterator[ProcessRecord]:
    """A ProcessRecord for the block: a signal unwinds it (at most ``cleanup_grace_s`` for Parsl's cleanup,
    then the recorded processes are ended and the process exits); leaving the block ends what is left."""
    rec = ProcessRecord(run_dir, out_dir)
    rec.refresh()
    old = {}

    def _on_signal(signum, frame):
        # Unwind through Parsl's cleanup (it talks to the interchange, so that must still be alive);
        # a watchdog ends the recorded processes and the stage if the cleanup takes too long.
        for s in old:
            signal.signal(s, signal.SIG_IGN)  # a second signal must not interrupt the cleanup
        print(f"dislomob: stopped by signal {signum}: ending the Parsl interchange and workers; finished runs are kept, "
              "the others run on the next request", file=sys.stderr, flush=True)

        def _watchdog():
            time.sleep(cleanup_grace_s)
            rec.end_all()
            rec.path.unlink(missing_ok=True)
            os._exit(128 + signum)

        threading.Thread(target=_watchdog, name="dislomob-signal-watchdog", daemon=True).start()
        raise SystemExit(128 + signum)

    if threading.current_thread() is threading.main_thread():
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            old[s] = signal.signal(s, _on_signal)
    stop = threading.Event()

    def _refresher():
        while not stop.wait(0.25):
            try:
                rec.refresh()
            except Exception:  # a process that vanished mid-scan; the next pass records the rest
                continue

    thread = threading.Thread(target=_refresher, name="dislomob-procs", daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        stop.set()
        thread.join(timeout=5)
        try:
            rec.close()
        finally:
            for s, h in old.items():
                signal.signal(s, h)
