"""Dispatch batches of MD runs through Parsl (local HighThroughputExecutor or a user config file)."""

from __future__ import annotations

import importlib.util
import logging
import os
import shlex
import sys
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import asdict
from pathlib import Path

from dislomob.config import Config, ExecutorConfig, MDConfig
from dislomob.md.procs import live_owners, reap_stale, recorded_processes
from dislomob.md.run import RunSpec, cached_run, run_key, should_run, simulate
from dislomob.md.slurm_jobs import job_states
from dislomob.md.trajectory import Event, Trajectory, write_trajectory

log = logging.getLogger(__name__)


def parsl_config(ex: ExecutorConfig, threads_per_run: int):
    """The Parsl Config for ``ex``: a local HTEX with ``ex.workers`` workers, or ``make_config`` from a file."""
    if ex.kind == "config_file":
        if not ex.config_file or not Path(ex.config_file).is_file():
            raise ValueError(f"executor.config_file={ex.config_file!r} not found: allowed a Python file defining make_config(workers, run_dir)")
        spec = importlib.util.spec_from_file_location("dislomob_user_parsl_config", ex.config_file)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod.make_config(ex.workers, ex.run_dir)
    from parsl.config import Config as ParslConfig
    from parsl.executors import HighThroughputExecutor
    from parsl.providers import LocalProvider

    if ex.kind == "slurm":
        return ParslConfig(executors=[slurm_executor(ex, threads_per_run)], run_dir=ex.run_dir, usage_tracking=0,
                           initialize_logging=False)
    return ParslConfig(
        executors=[
            HighThroughputExecutor(
                label="md_local",
                address="127.0.0.1",
                max_workers_per_node=ex.workers,
                cores_per_worker=threads_per_run,
                provider=LocalProvider(init_blocks=1, max_blocks=1),
                # a worker that dies (killed, out of memory) is noticed within seconds, not Parsl's default 30 s
                heartbeat_period=2,
                heartbeat_threshold=30,
            )
        ],
        run_dir=ex.run_dir,
        usage_tracking=0,
        initialize_logging=False,
    )


def worker_init(ex: ExecutorConfig) -> str:
    """The shell lines a Slurm block runs before its workers: ``executor.slurm.worker_init``, or else activating
    the virtual environment this process runs in (a shared file system, as on a cluster's login and compute
    nodes) and the MPI settings of this process."""
    if ex.slurm.worker_init is not None:
        return ex.slurm.worker_init
    venv = Path(sys.prefix)
    lines = [f"export PATH={shlex.quote(str(venv / 'bin'))}:$PATH", f"export VIRTUAL_ENV={shlex.quote(str(venv))}"]
    lines += [f"export {k}={shlex.quote(os.environ[k])}" for k in ("DISLOMOB_MPIEXEC", "DISLOMOB_MPI_NETWORK")
              if k in os.environ]
    return "\n".join(lines)


def slurm_executor(ex: ExecutorConfig, threads_per_run: int):
    """Parsl's HighThroughputExecutor on Slurm blocks (``executor.slurm``): ``runs_per_node`` workers per node of
    ``cores_per_run`` cores each; a block is one ``sbatch`` job (``srun`` starts the workers on its nodes)."""
    from parsl.executors import HighThroughputExecutor
    from parsl.launchers import SingleNodeLauncher, SrunLauncher
    from parsl.providers import SlurmProvider

    sl = ex.slurm
    if sl.cores_per_run < threads_per_run:
        raise ValueError(f"executor.slurm.cores_per_run={sl.cores_per_run} is fewer than the {threads_per_run} "
                         "cores one MD run uses (md.ranks x md.threads): allowed >= that")
    return HighThroughputExecutor(
        label="md_slurm",
        address=sl.address,
        max_workers_per_node=sl.runs_per_node,
        cores_per_worker=sl.cores_per_run,
        provider=SlurmProvider(
            partition=sl.partition, account=sl.account, qos=sl.qos, nodes_per_block=sl.nodes_per_block,
            cores_per_node=sl.runs_per_node * sl.cores_per_run, init_blocks=1, min_blocks=0,
            max_blocks=sl.max_blocks, walltime=sl.walltime, scheduler_options=sl.scheduler_options,
            worker_init=worker_init(ex), exclusive=False,
            launcher=SrunLauncher() if sl.nodes_per_block > 1 else SingleNodeLauncher(),
        ),
        heartbeat_period=2,
        heartbeat_threshold=30,
    )


class BatchResult(list):
    """The trajectory paths of a batch, one per spec in order, plus what this call did.

    ``ran``: paths run in this call; ``reused``: paths taken from the cache as they were;
    ``unreadable``: path -> why, for cached files that could not be read (rerun);
    ``reaped``: processes left by a killed earlier batch and ended at start.
    """

    def __init__(self, paths: list[Path]) -> None:
        super().__init__(paths)
        self.ran: list[Path] = []
        self.reused: list[Path] = []
        self.unreadable: dict[Path, str] = {}
        self.reaped: list[str] = []


def run_batch(
    specs: list[RunSpec],
    cfg: Config,
    out_dir: str | Path,
    progress: bool = True,
    md: list[MDConfig] | None = None,
    retry_failed: bool = False,
) -> BatchResult:
    """Run every spec that the cache does not settle through Parsl; a failed run is recorded and the rest go on.

    What is rerun follows ``dislomob.md.run.should_run``: absent, unreadable and transiently failed
    runs always, physics failures only with ``retry_failed``. A worker that dies (killed, lost,
    timed out) records its run as a ``transient`` failure. Processes a killed earlier batch left
    under ``executor.run_dir`` are ended first (``dislomob.md.procs``). ``md`` optionally gives each
    spec its own MD settings (default: ``cfg.md`` for all).
    """
    out_dir = Path(out_dir)
    check_out_dir(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    mds = md if md is not None else [cfg.md] * len(specs)
    if len(mds) != len(specs):
        raise ValueError(f"run_batch: {len(mds)} MD settings for {len(specs)} specs: allowed one per spec")
    result = BatchResult([out_dir / f"{run_key(s, m, cfg.material)}.h5" for s, m in zip(specs, mds)])
    result.reaped = reap_stale(cfg.executor.run_dir)
    if result.reaped:
        log.warning("simulate: ended %d process(es) left by a killed earlier batch under %s:\n  %s",
                    len(result.reaped), cfg.executor.run_dir, "\n  ".join(result.reaped))
    if not any(o.get("out_dir") == str(out_dir.resolve()) for o in live_owners(cfg.executor.run_dir)):
        remove_temporaries(out_dir)
    todo = []
    for s, m, p in zip(specs, mds, result):
        c = cached_run(p)
        if c.state == "unreadable":
            result.unreadable[p] = c.reason
            log.warning("simulate: %s cannot be read (%s): running it again", p, c.reason)
        if should_run(c, retry_failed):
            todo.append((s, m, p))
        else:
            result.reused.append(p)
    result.ran = [p for _, _, p in todo]
    if not todo:
        return result
    if cfg.executor.kind == "local" and cfg.executor.workers == 1 and len(todo) == 1:
        simulate(todo[0][0], todo[0][1], cfg.material, out_dir, progress=progress, force=True)
        return result
    import parsl
    from tqdm import tqdm

    venv_bin = str(Path(sys.executable).parent)
    os.environ["PATH"] = venv_bin + os.pathsep + os.environ.get("PATH", "")
    from dislomob.md.parsl_apps import simulate_app

    mat = cfg.material.model_dump()
    with recorded_processes(cfg.executor.run_dir, out_dir) as rec:
        with parsl.load(parsl_config(cfg.executor, cfg.md.threads)) as dfk:
            rec.executors = list(dfk.executors.values())
            rec.refresh()
            futures = {simulate_app(asdict(s), m.model_dump(), mat, str(out_dir), force=True): (s, m, p, _mtime(p))
                       for s, m, p in todo}
            bar = tqdm(total=len(futures), desc="MD runs", disable=not progress, unit="run")
            pending = set(futures)
            while pending:
                done, pending = wait(pending, timeout=2.0, return_when=FIRST_COMPLETED)
                for fut in done:
                    s, m, p, before = futures[fut]
                    try:
                        fut.result()
                    except Exception as exc:  # the worker died, was lost or timed out: transient
                        if _mtime(p) == before:  # (unless it wrote the run before it went away)
                            _record_worker_failure(s, m, cfg, p, exc, _slurm_context(cfg.executor, rec.slurm_jobs))
                    bar.update(1)
            bar.close()
    return result


def check_out_dir(out_dir: Path) -> None:
    """Fail before any MD when ``out_dir`` cannot hold trajectories (a file in the way, no write permission)."""
    out_dir = Path(out_dir)
    for q in [out_dir, *out_dir.parents]:
        if q.exists():
            if not q.is_dir():
                where = "is" if q == out_dir else f"has {q}, which is"
                raise ValueError(f"simulate: output folder {out_dir} {where} a file, not a folder: allowed a folder path")
            if not os.access(q, os.W_OK | os.X_OK):
                raise ValueError(f"simulate: output folder {out_dir}: {q} is not writable")
            return


def remove_temporaries(out_dir: Path) -> list[Path]:
    """Delete temporary files (``.<name>.<random>.h5.tmp``) that killed writes left in ``out_dir``."""
    removed = []
    for tmp in sorted(Path(out_dir).glob(".*.tmp")):
        if tmp.is_file():
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return None


def _slurm_context(ex: ExecutorConfig, jobs: set[str]) -> str:
    """", slurm job 3 CANCELLED" style states of the batch's Slurm jobs (empty off Slurm)."""
    if ex.kind != "slurm" or not jobs:
        return ""
    states = job_states(sorted(jobs, key=lambda j: (len(j), j)))
    return "; " + ", ".join(f"slurm job {j} {st}" for j, st in states.items()) if states else ""


def _record_worker_failure(spec: RunSpec, md: MDConfig, cfg: Config, path: Path, exc: BaseException,
                           context: str = "") -> None:
    from dislomob.md.run import _base_meta

    prev = cached_run(path)
    meta = _base_meta(spec, md, cfg.material, path.stem, None)
    meta.status = "failed"
    meta.failure_class = "transient"
    meta.attempts = prev.attempts + 1
    meta.failure_reason = " ".join(f"worker: {type(exc).__name__}: {exc}{context}".split())
    meta.events.append(Event(kind="failed", detail=f"transient: {meta.failure_reason}"))
    write_trajectory(path, Trajectory(meta, []))
