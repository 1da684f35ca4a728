"""One MD run on several MPI ranks (``md.ranks`` > 1): the launch from ``simulate`` and the script every rank runs.

``simulate`` builds the configuration, then :func:`run_md_on_ranks` writes the job (spec, settings,
configuration, metadata so far) into a temporary folder beside the trajectory and starts

    <launcher> -n <ranks> <python> -m dislomob.md.mpi_run <job folder>

Every rank runs the same script (SPMD): ``dislomob.md.run._run_md`` with LAMMPS on all ranks (domain
decomposition), positions gathered onto every rank for DXA (a collective call), and DXA, the crystal's
displacement, the frames and every file written on rank 0 only. Rank 0 writes its frames, stress samples
and metadata to the job folder; the parent reads them and writes the trajectory as for one rank, so the
file is the same (plus a ``note`` event naming the rank count).

Failures are recorded like those of a 1-rank run: a Python exception on any rank (LAMMPS errors, lost
atoms, runaway temperature, DXA line counts) is written by that rank to ``error.<rank>.json`` with its
class (``physics``; ``transient`` for ``MemoryError``) and reason, then the rank calls ``MPI_Abort`` (the
other ranks may wait in a collective call forever otherwise); rank 0's error wins. A launcher that cannot
start, or ranks that end without a result and without an error (killed: by a signal, out of memory), is
a ``transient`` failure.

Launcher: ``DISLOMOB_MPIEXEC`` (a command line, e.g. ``srun --mpi=pmi2`` on a cluster, followed by
``-n <ranks>``), else ``mpiexec.gforker`` next to ``sys.executable`` (the ``mpich`` wheel's fork process
manager), else ``mpiexec`` there, else on PATH. Why gforker: Hydra's ``mpiexec`` listens on 0.0.0.0 at a
random port for its proxies and the ranks inherit that socket (seen in /proc/<pid>/net/tcp for
``mpiexec``, ``hydra_pmi_proxy`` and both ranks, also with ``-launcher fork -iface lo`` or ``-localhost
127.0.0.1``); gforker forks the ranks itself and talks PMI over inherited file descriptors: no TCP socket
at all in any of its processes. The ranks use MPICH's shared memory (``dislomob.md.lmp.MPI_LOCAL_ENV``:
``FI_PROVIDER=shm``, ``UCX_TLS=self,sm``) unless ``DISLOMOB_MPI_NETWORK=1``, which a custom launcher sets
unless it is given (ranks on several nodes need the network).

No rank outlives the run: the launcher and its ranks form a process group of their own that is ended
(SIGTERM, then SIGKILL) when ``simulate`` is interrupted; when the process that started the launcher dies,
even by SIGKILL, the launcher gets SIGKILL (gforker; a custom launcher SIGTERM, to end its ranks), and every
rank gets SIGKILL when its launcher dies (Linux ``PR_SET_PDEATHSIG``). A job folder left by a kill is
removed by the next run of the same key.
"""

from __future__ import annotations

import ctypes
import json
import os
import pickle
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from dislomob.config import MaterialConfig, MDConfig
from dislomob.md.build import Configuration
from dislomob.md.trajectory import Event, Frame, TrajectoryMeta

JOB, RESULT, LOG, OWNER = "job.pkl", "result.pkl", "launch.log", "owner.json"
PR_SET_PDEATHSIG = 1
GRACE_S = 5.0


def launcher(ranks: int) -> list[str]:
    """The command line that starts ``ranks`` MPI processes (module docstring), without the program."""
    custom = os.environ.get("DISLOMOB_MPIEXEC", "").strip()
    if custom:
        return [*shlex.split(custom), "-n", str(ranks)]
    bindir = Path(sys.executable).parent
    for name in ("mpiexec.gforker", "mpiexec"):
        if (bindir / name).exists():
            return [str(bindir / name), "-n", str(ranks)]
    return [shutil.which("mpiexec.gforker") or "mpiexec", "-n", str(ranks)]


def _libc_prctl():
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux
        return None


def _die_with_parent(sig: int):
    """A function that asks the kernel to send ``sig`` to the calling process when its parent dies (Linux)."""
    prctl = _libc_prctl()  # looked up before fork: the child only calls it

    def arm() -> None:
        if prctl is not None:
            prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)

    return arm


def _end_group(proc: subprocess.Popen) -> None:
    """End the launcher's process group (it leads it: ``start_new_session``): SIGTERM, then SIGKILL."""
    for sig, wait_s in ((signal.SIGTERM, GRACE_S), (signal.SIGKILL, GRACE_S)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def _tail(path: Path, n: int = 400) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return " ".join(text[-n:].split())


def _rank_error(job: Path) -> dict | None:
    """The error a rank recorded (rank 0's first), or None."""
    errors = []
    for f in job.glob("error.*.json"):
        try:
            errors.append(json.loads(f.read_text()))
        except (OSError, ValueError):
            continue
    return min(errors, key=lambda e: e.get("rank", 1 << 30)) if errors else None


def run_md_on_ranks(spec, md: MDConfig, material: MaterialConfig, conf: Configuration, meta: TrajectoryMeta,
                    out_dir: str | Path, progress: bool) -> tuple[list[Frame], list[np.ndarray]]:
    """``_run_md`` on ``md.ranks`` MPI processes; updates ``meta`` as ``_run_md`` does; raises ``MDFailure``."""
    from dislomob.md.run import MDFailure

    cmd = launcher(md.ranks)
    meta.events.append(Event(kind="note", detail=f"MD on {md.ranks} MPI ranks ({Path(cmd[0]).name})"))
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    _remove_stale_jobs(Path(out_dir), meta.key)
    job = Path(tempfile.mkdtemp(prefix=f".{meta.key}.", suffix=".ranks.tmp", dir=out_dir))  # ignored: .*.tmp
    try:
        (job / OWNER).write_text(json.dumps(_me()))
        with open(job / JOB, "wb") as fh:
            pickle.dump({"spec": spec, "md": md, "material": material, "conf": conf, "meta": meta,
                         "out_dir": str(out_dir), "progress": progress}, fh)
        env = dict(os.environ)
        custom = bool(os.environ.get("DISLOMOB_MPIEXEC", "").strip())
        if custom:
            env.setdefault("DISLOMOB_MPI_NETWORK", "1")
        # a cluster's launcher ends its ranks on SIGTERM; gforker's lingers a few seconds after ending them
        on_parent_death = signal.SIGTERM if custom else signal.SIGKILL
        argv = [*cmd, sys.executable, "-m", "dislomob.md.mpi_run", str(job)]
        with open(job / LOG, "wb") as log:
            try:
                proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                        stderr=None if progress else subprocess.STDOUT, start_new_session=True,
                                        preexec_fn=_die_with_parent(on_parent_death))
            except OSError as exc:
                raise MDFailure("transient", f"MPILaunchError: cannot start {shlex.join(cmd)}: {exc}") from exc
            try:
                rc = proc.wait()
            except BaseException:
                _end_group(proc)
                raise
        if rc == 0 and (job / RESULT).exists():
            with open(job / RESULT, "rb") as fh:
                res = pickle.load(fh)
            _copy_meta(res["meta"], meta)
            return res["frames"], res["stress_samples"]
        err = _rank_error(job)
        if err is not None:
            if err.get("meta"):
                _copy_meta(TrajectoryMeta.model_validate_json(err["meta"]), meta)
            raise MDFailure(err["failure_class"], err["reason"])
        how = f"signal {signal.Signals(-rc).name}" if rc < 0 else f"exit status {rc}"
        out = _tail(job / LOG)
        raise MDFailure("transient", f"MPILaunchError: {shlex.join(cmd)} ended by {how} without a result"
                                     + (f"; output: {out}" if out else ""))
    finally:
        shutil.rmtree(job, ignore_errors=True)


def _me() -> dict:
    import psutil

    me = psutil.Process()
    return {"pid": me.pid, "create_time": me.create_time()}


def _remove_stale_jobs(out_dir: Path, key: str) -> None:
    """Remove job folders of ``key`` that a killed ``simulate`` (SIGKILL: no cleanup) left; never a live one's."""
    import psutil

    for d in out_dir.glob(f".{key}.*.ranks.tmp"):
        try:
            owner = json.loads((d / OWNER).read_text())
            alive = abs(psutil.Process(owner["pid"]).create_time() - owner["create_time"]) < 0.05
        except psutil.NoSuchProcess:
            alive = False
        except (OSError, ValueError, KeyError, psutil.Error):
            continue  # being written, or not ours to judge
        if not alive:
            shutil.rmtree(d, ignore_errors=True)


def _copy_meta(src: TrajectoryMeta, dst: TrajectoryMeta) -> None:
    for name, value in src:
        setattr(dst, name, value)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _rank() -> int:
    """This process's rank: MPI's once it runs, before that the launcher's environment's (-1: none named)."""
    from dislomob.md import lmp as L

    try:
        lib = L.libmpi()
        up, down, rank = ctypes.c_int(0), ctypes.c_int(0), ctypes.c_int(-1)
        lib.MPI_Initialized(ctypes.byref(up))
        lib.MPI_Finalized(ctypes.byref(down))
        if up.value and not down.value and lib.MPI_Comm_rank(ctypes.c_int(L.MPI_COMM_WORLD), ctypes.byref(rank)) == 0:
            return rank.value
    except (OSError, RuntimeError):
        pass
    for var in ("PMI_RANK", "PMIX_RANK", "SLURM_PROCID"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return -1


def _abort(job: Path, exc: BaseException, meta: TrajectoryMeta | None) -> None:
    """Record ``exc`` for the parent, then end every rank (``MPI_Abort``; MPI started first if it has not)."""
    from dislomob.md import lmp as L
    from dislomob.md.run import failure_of

    cls, reason = failure_of(exc)
    rank = _rank()
    record = {"rank": rank, "failure_class": cls, "reason": reason,
              "meta": meta.model_dump_json() if meta is not None and rank == 0 else None}
    try:
        _write_atomic(job / f"error.{rank if rank >= 0 else os.getpid()}.json", json.dumps(record).encode())
    finally:
        sys.stderr.write(f"rank {rank}: {reason}\n")
        sys.stderr.flush()
        lib = L.libmpi()
        flag = ctypes.c_int(0)
        lib.MPI_Initialized(ctypes.byref(flag))
        if not flag.value:
            lib.MPI_Init(None, None)
        lib.MPI_Abort(ctypes.c_int(L.MPI_COMM_WORLD), 3)
        os._exit(3)


def main(argv: list[str] | None = None) -> int:
    """Every rank: run the job in the folder ``argv[0]``; rank 0 writes the result there."""
    argv = sys.argv[1:] if argv is None else argv
    _die_with_parent(signal.SIGKILL)()
    job = Path(argv[0])
    meta = None
    try:
        from dislomob.md import lmp as L
        from dislomob.md.run import _run_md

        with open(job / JOB, "rb") as fh:
            j = pickle.load(fh)
        meta = j["meta"]
        frames, stress = _run_md(j["spec"], j["md"], j["material"], j["conf"], meta, j["out_dir"], j["progress"],
                                 abort=lambda exc: _abort(job, exc, meta))
        if _rank() in (0, -1):
            _write_atomic(job / RESULT, pickle.dumps({"frames": frames, "stress_samples": stress, "meta": meta}))
        lib = L.libmpi()
        flag = ctypes.c_int(0)
        lib.MPI_Finalized(ctypes.byref(flag))
        if not flag.value:
            lib.MPI_Finalize()
        return 0
    except Exception as exc:
        _abort(job, exc, meta)
        return 3


if __name__ == "__main__":
    sys.exit(main())
