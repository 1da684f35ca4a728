"""MD runs and graphs of active-learning candidates and test trajectories, shared by every strategy.

A run is simulated once (the MD cache is content-addressed by its physical parameters) and featurized
once into ``<graphs_dir>/<key>.pt``. A run that failed, was cut (a line annihilated or left its DXA
window) or gave no graph is not usable; its reason is returned so the loop can log it and go on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dislomob.config import Config
from dislomob.md.run import RunSpec


@dataclass(frozen=True)
class RunData:
    """One run: its MD file, its graph file when usable, else the reason it is not."""

    spec: RunSpec
    md_path: Path
    graph_path: Path | None
    reason: str | None
    missing: bool = False  # offline: the MD cache lacks the run (nothing to read yet, unlike a failed run)

    @property
    def traj_id(self) -> str:
        return self.md_path.stem

    @property
    def usable(self) -> bool:
        return self.graph_path is not None


def prepare_runs(specs: list[RunSpec], cfg: Config, md_dir: str | Path, graphs_dir: str | Path,
                 progress: bool = True, simulate: bool = True, featurize: bool | None = None) -> list[RunData]:
    """Simulate what the MD cache lacks (through the Parsl executor), featurize what the graph folder lacks.

    With ``simulate`` False no MD runs: a run the MD cache lacks comes back ``missing``. ``featurize``
    (default: ``simulate``) False writes no graph either: a finished run without its graph is
    ``missing`` too (a DVC stage that only reads what ``dislomob al-data`` made); a failed run is
    unusable with its reason either way.
    """
    from dislomob.errors import DislomobError
    from dislomob.features.featurize import featurize_file
    from dislomob.md.dispatch import run_batch
    from dislomob.md.run import run_key
    from dislomob.md.trajectory import read_meta

    featurize = simulate if featurize is None else featurize
    md_dir, graphs_dir = Path(md_dir), Path(graphs_dir)
    if simulate:
        paths = list(run_batch(specs, cfg, md_dir, progress=progress)) if specs else []
    else:
        paths = [md_dir / f"{run_key(s, cfg.md, cfg.material)}.h5" for s in specs]
    out = []
    for spec, path in zip(specs, paths):
        graph = graphs_dir / f"{path.stem}.pt"
        if not path.is_file():
            out.append(RunData(spec, path, None, f"not simulated: {path} absent", missing=True))
            continue
        reason = None
        try:
            meta = read_meta(path)
            if meta.status != "ok":
                reason = f"MD {meta.status}: {meta.failure_reason or (meta.events[-1].detail if meta.events else '')}"
            elif not graph.is_file():
                if not featurize:
                    out.append(RunData(spec, path, None, f"not featurized: {graph} absent (beyond what "
                                                         "`dislomob al-data` prepared)", missing=True))
                    continue
                featurize_file(cfg, path, graph)
        except (DislomobError, ValueError, OSError) as err:
            reason = f"{type(err).__name__}: {' '.join(str(err).split())[:300]}"
        out.append(RunData(spec, path, None if reason else graph, reason))
    return out


def stream_budget(cfg: Config) -> int:
    """Candidates a loop needs from the stream when none fails: the first pool and a refill per iteration."""
    return cfg.active.pool_size + cfg.active.select * cfg.active.max_iterations


def prepare_al_data(cfg: Config, md_dir: str | Path, graphs_dir: str | Path, progress: bool = True) -> dict:
    """Simulate and featurize the fixed test set, the calibration set and the stream's candidates until :func:`stream_budget` of
    them are usable (a failed run is replaced by the next candidate, at most the budget again), shared by
    every strategy; return counts and the reasons of unusable runs."""
    from dislomob.active.candidates import calibration_set, candidates, test_set

    ac = cfg.active
    test = prepare_runs(test_set(ac.test_trajectories, ac.test_seed, ac), cfg, md_dir, graphs_dir, progress)
    cal = prepare_runs(calibration_set(ac.calibration_trajectories, ac.test_seed, ac) if ac.calibrate_spread else [],
                       cfg, md_dir, graphs_dir, progress)
    budget, stream = stream_budget(cfg), []
    while sum(r.usable for r in stream) < budget and len(stream) < 2 * budget:
        need = min(budget - sum(r.usable for r in stream), 2 * budget - len(stream))
        stream += prepare_runs(candidates(len(stream), need, ac.candidate_seed, ac), cfg, md_dir, graphs_dir, progress)
    return {"n_test": len(test), "n_test_usable": sum(r.usable for r in test),
            "n_calibration": len(cal), "n_calibration_usable": sum(r.usable for r in cal),
            "n_candidates": len(stream), "n_candidates_usable": sum(r.usable for r in stream),
            "unusable": {r.traj_id: r.reason for r in test + cal + stream if not r.usable}}
