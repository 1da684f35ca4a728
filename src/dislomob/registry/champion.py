"""Champion or challenger: the alias rule of the registry, and the fixed test set it is judged on.

A new version takes the alias ``champion`` when its median single-step test error on the active-learning
stage's fixed test set (data/al: the runs of ``active.test_seed``, dislomob.active.candidates.test_set) is
not worse than the current champion's on the same set, recomputed now (so a changed test set compares like
with like) and it passes the law's sanity checks (dislomob.ddd.sanity.check_law); otherwise it takes
``challenger`` and the reason is logged. The error is the AL loop's own
measure, :func:`dislomob.active.loop.evaluate_on_test` (dimensionless).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from dislomob.config import Config

CHAMPION = "champion"
CHALLENGER = "challenger"


@dataclass(frozen=True)
class Decision:
    """The alias a new version gets and why; the champion it was compared with (None: there was none)."""

    alias: str
    reason: str
    previous_version: str | None
    previous_test_error: float | None


def decide(test_error: float, champion_version: str | None, champion_error: float | None,
           champion_problem: str | None = None, sanity_failure: str | None = None) -> Decision:
    """Champion when there is none, when it cannot be evaluated (``champion_problem``) or when ``test_error``
    <= ``champion_error`` (errors dimensionless); else challenger. A non-finite error or a failed sanity check
    (``sanity_failure`` says which) never takes champion."""
    if not math.isfinite(test_error):
        return Decision(CHALLENGER, f"test error {test_error} is not finite", champion_version, champion_error)
    if sanity_failure is not None:
        return Decision(CHALLENGER, f"failed the law's sanity checks: {sanity_failure}", champion_version,
                        champion_error)
    if champion_version is None:
        return Decision(CHAMPION, "no champion yet", None, None)
    if champion_problem is not None or champion_error is None or not math.isfinite(champion_error):
        why = champion_problem or f"its test error is {champion_error}"
        return Decision(CHAMPION, f"champion version {champion_version} cannot be evaluated ({why})",
                        champion_version, champion_error)
    if test_error <= champion_error:
        return Decision(CHAMPION, f"test error {test_error:.6g} not worse than champion version {champion_version}'s "
                        f"{champion_error:.6g}", champion_version, champion_error)
    return Decision(CHALLENGER, f"test error {test_error:.6g} worse than champion version {champion_version}'s "
                    f"{champion_error:.6g} on the same test set", champion_version, champion_error)


def fixed_test_set(cfg: Config, md_dir: str | Path, graphs_dir: str | Path) -> tuple[dict[str, list], list[Path]]:
    """(graphs by trajectory, graph files) of the AL stage's fixed test runs (read only: what ``dislomob al-data``
    prepared); an incomplete set raises InputFileError naming the missing runs, as in the AL loop."""
    from dislomob.active.candidates import test_set
    from dislomob.active.loop import _held_out
    from dislomob.active.pool import prepare_runs

    ac = cfg.active
    runs = prepare_runs(test_set(ac.test_trajectories, ac.test_seed, ac), cfg, md_dir, graphs_dir, progress=False,
                        simulate=False, featurize=False)
    return _held_out(runs, "test"), [r.graph_path for r in runs if r.usable]


def ensemble_test_error(ensemble_path: str | Path, test: dict[str, list], cfg: Config) -> float:
    """Median single-step relative error (dimensionless) of the ensemble file on the test graphs ``test``."""
    from dislomob.active.loop import evaluate_on_test
    from dislomob.model.ensemble import load_ensemble

    model, _ = load_ensemble(ensemble_path)
    return float(evaluate_on_test(model.eval(), test, cfg.active.noise_floor_angstrom)["test_error_median"])
