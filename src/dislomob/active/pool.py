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

    @property
    def traj_id(self) -> str:
        return self.md_path.stem

    @property
    def usable(self) -> bool:
        return self.graph_path is not None


def prepare_runs(specs: list[RunSpec], cfg: Config, md_dir: str | Path, graphs_dir: str | Path,
                 progress: bool = True) -> list[RunData]:
    """Simulate what the MD cache lacks (through the Parsl executor), featurize what the graph folder lacks."""
    from dislomob.errors import DislomobError
    from dislomob.features.featurize import featurize_file
    from dislomob.md.dispatch import run_batch
    from dislomob.md.trajectory import read_meta

    md_dir, graphs_dir = Path(md_dir), Path(graphs_dir)
    paths = list(run_batch(specs, cfg, md_dir, progress=progress)) if specs else []
    out = []
    for spec, path in zip(specs, paths):
        graph = graphs_dir / f"{path.stem}.pt"
        reason = None
        try:
            meta = read_meta(path)
            if meta.status != "ok":
                reason = f"MD {meta.status}: {meta.failure_reason or (meta.events[-1].detail if meta.events else '')}"
            elif not graph.is_file():
                featurize_file(cfg, path, graph)
        except (DislomobError, ValueError, OSError) as err:
            reason = f"{type(err).__name__}: {' '.join(str(err).split())[:300]}"
        out.append(RunData(spec, path, None if reason else graph, reason))
    return out
