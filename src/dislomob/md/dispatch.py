"""Dispatch batches of MD runs through Parsl (local HighThroughputExecutor or a user config file)."""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import asdict
from pathlib import Path

from dislomob.config import Config, ExecutorConfig, MDConfig
from dislomob.md.run import RunSpec, run_key, simulate
from dislomob.md.trajectory import Event, Trajectory, write_trajectory


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

    return ParslConfig(
        executors=[
            HighThroughputExecutor(
                label="md_local",
                address="127.0.0.1",
                max_workers_per_node=ex.workers,
                cores_per_worker=threads_per_run,
                provider=LocalProvider(init_blocks=1, max_blocks=1),
            )
        ],
        run_dir=ex.run_dir,
        usage_tracking=0,
        initialize_logging=False,
    )


def run_batch(
    specs: list[RunSpec], cfg: Config, out_dir: str | Path, progress: bool = True, md: list[MDConfig] | None = None
) -> list[Path]:
    """Run every spec (cached ones cost nothing) through Parsl; a failed run is recorded and the rest go on.

    ``md`` optionally gives each spec its own MD settings (default: ``cfg.md`` for all).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    mds = md if md is not None else [cfg.md] * len(specs)
    if len(mds) != len(specs):
        raise ValueError(f"run_batch: {len(mds)} MD settings for {len(specs)} specs: allowed one per spec")
    paths = [out_dir / f"{run_key(s, m, cfg.material)}.h5" for s, m in zip(specs, mds)]
    todo = [(s, m, p) for s, m, p in zip(specs, mds, paths) if not p.exists()]
    if not todo:
        return paths
    if cfg.executor.kind == "local" and cfg.executor.workers == 1 and len(todo) == 1:
        simulate(todo[0][0], todo[0][1], cfg.material, out_dir, progress=progress)
        return paths
    import parsl
    from tqdm import tqdm

    venv_bin = str(Path(sys.executable).parent)
    os.environ["PATH"] = venv_bin + os.pathsep + os.environ.get("PATH", "")
    from dislomob.md.parsl_apps import simulate_app

    mat_json = cfg.material.model_dump_json()
    with parsl.load(parsl_config(cfg.executor, cfg.md.threads)):
        futures = [(s, m, p, simulate_app(asdict(s), m.model_dump_json(), mat_json, str(out_dir))) for s, m, p in todo]
        bar = tqdm(total=len(futures), desc="MD runs", disable=not progress, unit="run")
        for s, m, p, fut in futures:
            try:
                fut.result()
            except Exception as exc:  # a worker that died: record the run as failed, keep the others
                _record_worker_failure(s, m, cfg, p, exc)
            bar.update(1)
        bar.close()
    return paths


def _record_worker_failure(spec: RunSpec, md: MDConfig, cfg: Config, path: Path, exc: BaseException) -> None:
    from dislomob.md.run import _base_meta

    meta = _base_meta(spec, md, cfg.material, path.stem, None)
    meta.status = "failed"
    meta.failure_reason = f"worker: {type(exc).__name__}: {exc}"
    meta.events.append(Event(kind="failed", detail=meta.failure_reason))
    write_trajectory(path, Trajectory(meta, []))
