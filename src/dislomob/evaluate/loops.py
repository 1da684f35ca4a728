"""The shear-loop evaluations of the evaluate stage (paper Fig. 5c-d): loop-trained on loops, dipole-trained on loops.

- ``loop``: the loop-trained ensemble (``dislomob --loops train``, ``loops.model_dir``) on the test trajectories of
  its own split, beside the phenomenological law fitted to its training loops;
- ``dipole_on_loops``: the evaluated dipole ensemble (the champion) on the same loop test trajectories, beside the
  law fitted to the dipoles: a paired comparison with ``loop``;
- ``dipole_on_all_loops``: the dipole ensemble on every loop trajectory (it saw none), for a tighter interval.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from dislomob.config import Config
from dislomob.errors import InputFileError
from dislomob.evaluate.models import fit_law, load_evaluated_model
from dislomob.evaluate.single_step import Evaluation
from dislomob.evaluate.test_sets import by_trajectory, split_test_ids


@dataclass(frozen=True)
class LoopInputs:
    """Where the loop data are: the loop params (dislomob.loop_profile.loop_config), the loop graph folder and the
    loop-trained ensemble's folder (ensemble.pt, split.json)."""

    cfg: Config
    graphs_dir: Path
    train_dir: Path


def loop_evaluations(loops: LoopInputs, dipole_model: torch.nn.Module, dipole_law: torch.nn.Module
                     ) -> tuple[list[Evaluation], dict[str, Any]]:
    """The three loop evaluations of the module docstring and what they hold (trajectory ids, the fitted law's
    parameters on the training loops)."""
    from dislomob.train.data import load_graph_dir

    if not loops.graphs_dir.is_dir() or not (loops.train_dir / "ensemble.pt").is_file():
        raise InputFileError(f"no loop data: {loops.graphs_dir} or {loops.train_dir / 'ensemble.pt'} missing; run "
                             "`dislomob --loops simulate`, `--loops featurize`, `--loops train` (stages loop_md, "
                             "loop_featurize, loop_train), or `dislomob evaluate --no-loops`")
    pool = by_trajectory(load_graph_dir(loops.graphs_dir))
    lm = load_evaluated_model(loops.cfg, "train", train_dir=loops.train_dir)
    missing = [t for t in lm.train_ids if t not in pool]
    if missing:
        raise InputFileError(f"training loops {missing} of {lm.path} have no graphs in {loops.graphs_dir}: rerun "
                             "`dislomob --loops featurize` and `dislomob --loops train`")
    test_ids = [t for t in split_test_ids(loops.train_dir) if t not in set(lm.seen_ids)]
    absent = [t for t in test_ids if t not in pool]
    if absent or not test_ids:
        raise InputFileError(f"loop test trajectories {test_ids} of {loops.train_dir / 'split.json'}: "
                             f"{'none' if not test_ids else f'{absent} have no graphs in {loops.graphs_dir}'}")
    law, fit = fit_law([g for t in lm.train_ids for g in pool[t]], loops.cfg.train.baseline_steps)
    test = [g for t in test_ids for g in pool[t]]
    every = [g for t in sorted(pool) for g in pool[t]]
    evaluations = [Evaluation("loop", lm.model, law, test),
                   Evaluation("dipole_on_loops", dipole_model, dipole_law, test),
                   Evaluation("dipole_on_all_loops", dipole_model, dipole_law, every)]
    info = {"loop_model": {"path": str(lm.path), **lm.provenance, "train_trajectories": lm.train_ids,
                           "seen_trajectories": lm.seen_ids},
            "test_trajectories": test_ids, "all_trajectories": sorted(pool),
            "loop_baseline_fit": asdict(fit)}
    return evaluations, info
