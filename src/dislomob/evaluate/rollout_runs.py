"""The MD trajectories that multi-step rollouts are judged on (the ``eval_data`` stage).

Held-out dipoles recorded long enough for the rollout horizon: the project's MD settings with the recorded
production raised to ``rollout.md_duration_ps`` (ps), one run per (character angle, temperature, stress) of
the rollout grid (deg, K, GPa) with their own seed ``rollout.md_seed``, so no frame is shared with a training
run even at a training condition. Runs are simulated through the same cached, fault-tolerant batch as every
other MD of the project (a failed run is recorded and the rest go on) and featurized beside.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from dislomob.config import Config
from dislomob.md.run import RunSpec


def rollout_md_config(cfg: Config) -> Config:
    """``cfg`` with the recorded MD production set to ``rollout.md_duration_ps`` (everything else unchanged)."""
    md = cfg.md.model_copy(update={"duration_ps": cfg.rollout.md_duration_ps})
    return cfg.model_copy(update={"md": md})


def rollout_specs(cfg: Config) -> list[RunSpec]:
    """The rollout grid's runs: every (angle deg, temperature K, stress GPa) of ``rollout.md_*``."""
    r = cfg.rollout
    return [RunSpec(temperature_k=t, stress_gpa=s, angle_deg=a, seed=r.md_seed)
            for a, t, s in itertools.product(r.md_angles_deg, r.md_temperatures_k, r.md_stresses_gpa)]


def prepare_rollout_data(cfg: Config, md_dir: str | Path, graphs_dir: str | Path, progress: bool = True,
                         simulate: bool = True) -> dict[str, Any]:
    """Simulate (when ``simulate``) and featurize the rollout runs; return their trajectory files (usable ones),
    counts and the reasons of unusable runs. Without ``simulate`` only what is there is read."""
    from dislomob.active.pool import prepare_runs

    long_cfg = rollout_md_config(cfg)
    runs = prepare_runs(rollout_specs(cfg), long_cfg, md_dir, graphs_dir, progress=progress, simulate=simulate)
    return {"n_runs": len(runs), "n_usable": sum(r.usable for r in runs),
            "trajectories": [str(r.md_path) for r in runs if r.usable],
            "unusable": {str(r.md_path): r.reason for r in runs if not r.usable}}
