"""The `simulate` DVC stage on a tiny grid, in a scratch git+DVC repo: runs once, then reruns nothing."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

TINY = {
    "seed": 7,
    "md": {"duration_ps": 0.2, "equilibrate_ps": 0.1, "settle_ps": 0.05, "minimize_steps": 100, "threads": 2,
           "box": {"glide_nm": 3.0, "line_nm": 1.0, "height_nm": 6.0}},
    "dataset": {"temperatures_k": [300], "stresses_gpa": [0.5], "angles_deg": [85, 95]},
    "executor": {"workers": 1},
}


def _tiny_params() -> str:
    """The repo's params.yaml with a tiny MD grid (DVC needs every params section the stages name)."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for section, values in TINY.items():
        if isinstance(values, dict):
            params[section].update(values)
        else:
            params[section] = values
    return yaml.safe_dump(params)


def _run(cmd, cwd):
    env = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_simulate_stage_runs_then_is_up_to_date(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(ROOT / "dvc.yaml", repo / "dvc.yaml")
    shutil.copytree(ROOT / "src", repo / "src", ignore=shutil.ignore_patterns("__pycache__"))
    (repo / "params.yaml").write_text(_tiny_params())
    dvc = str(Path(sys.executable).parent / "dvc")
    for cmd in (["git", "init", "-q"], [dvc, "init", "-q"], [dvc, "config", "core.analytics", "false"]):
        assert _run(cmd, repo).returncode == 0
    first = _run([dvc, "repro", "simulate"], repo)
    assert first.returncode == 0, first.stdout + first.stderr
    index = json.loads((repo / "data/md/index.json").read_text())
    # 85 and 95 deg both snap to the edge character (90 deg); each grid point has its own seed, so its own run
    assert index["n_runs"] == 2 and index["n_ok"] == 2
    assert index["runs"][0]["key"] != index["runs"][1]["key"]
    assert all(r["angle_deg"] == pytest.approx(90.0) for r in index["runs"])
    mtime = (repo / "data/md/index.json").stat().st_mtime_ns
    second = _run([dvc, "repro", "simulate"], repo)
    assert second.returncode == 0
    assert "didn't change" in second.stdout or "up to date" in second.stdout
    assert (repo / "data/md/index.json").stat().st_mtime_ns == mtime
