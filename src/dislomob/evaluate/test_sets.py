"""The test trajectories of the stage (``evaluate.test_sets``), by trajectory id.

- ``split``: the train stage's test part (``<train.model_dir>/split.json``: stratified by character bucket,
  seeded), graphs from ``features.out_dir``;
- ``al``: the active-learning stage's fixed test runs (``active.test_seed``; dislomob.registry.champion
  .fixed_test_set, what ``dislomob al-data`` prepared), graphs from data/al.

Trajectories the evaluated ensemble trained or validated on are left out (reported as ``dropped_seen``).
"""

from __future__ import annotations

import json
from pathlib import Path

from torch_geometric.data import HeteroData

from dislomob.config import Config
from dislomob.errors import InputFileError

TEST_SETS = ("split", "al")


def by_trajectory(graphs: list[HeteroData]) -> dict[str, list[HeteroData]]:
    """Graphs grouped by ``traj_id`` (order kept)."""
    out: dict[str, list[HeteroData]] = {}
    for g in graphs:
        out.setdefault(str(g.traj_id), []).append(g)
    return out


def split_test_ids(train_dir: str | Path) -> list[str]:
    """The test trajectory ids of the train stage's split file."""
    path = Path(train_dir) / "split.json"
    try:
        ids = json.loads(path.read_text())["test"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise InputFileError(f"{path}: no readable 'test' list of the train split ({type(err).__name__}: {err}); "
                             "run `dislomob train`") from None
    return sorted(map(str, ids))


def load_test_set(name: str, cfg: Config, graphs: dict[str, list[HeteroData]], train_dir: str | Path,
                  al_md_dir: str | Path, al_graphs_dir: str | Path) -> dict[str, list[HeteroData]]:
    """Graphs by trajectory of the test set ``name``; ``graphs`` holds the dataset's graphs by trajectory."""
    if name == "split":
        ids = split_test_ids(train_dir)
        missing = [t for t in ids if t not in graphs]
        if missing:
            raise InputFileError(f"test trajectories {missing} of {Path(train_dir) / 'split.json'} have no graphs in "
                                 f"{cfg.features.out_dir}: run `dislomob featurize`")
        return {t: graphs[t] for t in ids}
    if name == "al":
        from dislomob.registry.champion import fixed_test_set

        return fixed_test_set(cfg, al_md_dir, al_graphs_dir)[0]
    raise ValueError(f"evaluate.test_sets entry {name!r}: allowed {list(TEST_SETS)}")


def unseen(test: dict[str, list[HeteroData]], seen: list[str]) -> tuple[dict[str, list[HeteroData]], list[str]]:
    """(the test trajectories not in ``seen``, the ids left out)."""
    drop = sorted(t for t in test if t in set(seen))
    return {t: g for t, g in test.items() if t not in set(seen)}, drop
