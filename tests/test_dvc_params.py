"""Every parameter a DVC stage names exists in params.yaml (DVC refuses to run a stage whose parameter is missing,
which only shows at the end of a long ``dvc repro``)."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _has(tree: dict, dotted: str) -> bool:
    node = tree
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def test_every_stage_parameter_is_in_params_yaml() -> None:
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    files: dict[str, dict] = {}
    missing, checked = [], 0
    for name, stage in stages.items():
        for entry in stage.get("do", stage).get("params", []):
            by_file = entry if isinstance(entry, dict) else {"params.yaml": [entry]}
            for file, keys in by_file.items():
                tree = files.setdefault(file, yaml.safe_load((ROOT / file).read_text()))
                for key in keys:
                    checked += 1
                    if not _has(tree, key):
                        missing.append(f"{name}: {file}:{key}")
    assert checked > 20 and not missing, missing
