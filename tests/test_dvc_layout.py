"""One source for the folder layout: the params' defaults (dislomob.config) name every stage output folder that
dvc.yaml declares, and the CLI takes its folder defaults from the params (no literal folder of its own)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from dislomob.config import Config

ROOT = Path(__file__).resolve().parents[1]


def _folder_defaults(cfg: Config) -> dict[str, str]:
    """section.field -> default of every params field that names a folder (``*_dir``)."""
    out = {}
    for section, value in cfg.model_dump().items():
        if isinstance(value, dict):
            out.update({f"{section}.{k}": v for k, v in value.items() if k.endswith("_dir") and isinstance(v, str)})
    return out


def _outs() -> set[str]:
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    outs = set()
    for stage in stages.values():
        body = stage.get("do", stage)
        for o in body.get("outs", []):
            outs.add(next(iter(o)) if isinstance(o, dict) else o)
    return outs


def test_every_folder_default_is_a_dvc_output_and_every_data_or_model_output_is_a_folder_default():
    defaults = _folder_defaults(Config())
    defaults.pop("executor.run_dir")  # Parsl's scratch folder: no stage output
    outs = _outs()
    folders = {o.split("/${item}")[0] for o in outs if o.startswith(("data/", "models/", "reports/"))}
    folders = {f for f in folders if not Path(f).suffix}  # files (a PNG, a .pt) are not folders
    missing = {k: v for k, v in defaults.items() if v not in folders}
    assert not missing, f"params folder defaults that no dvc.yaml stage writes: {missing}"
    # a stage whose output is one file the CLI names (export: models/export/law.pt2) needs no params folder
    cli_files = re.findall(r'default="((?:data|models)/[^"]*\.[a-z0-9]+)"', (ROOT / "src/dislomob/cli.py").read_text())
    strays = folders - set(defaults.values()) - {str(Path(f).parent) for f in cli_files}
    assert not strays, f"dvc.yaml output folders that no params field names: {sorted(strays)}"


def test_the_cli_writes_no_folder_default_of_its_own():
    """Every `default="data/..."` or `"models/..."` folder in the CLI would be a second source of the layout."""
    text = (ROOT / "src" / "dislomob" / "cli.py").read_text()
    literal = re.findall(r'default="((?:data|models)/[^"]*)"', text)
    assert not [p for p in literal if not Path(p).suffix], literal
