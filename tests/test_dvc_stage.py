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


def test_md_runs_are_shared_through_a_dvc_remote(tmp_path):
    """A team shares `data/md` through a DVC remote (here a local folder; any DVC remote type works): after
    `dvc push` from one clone, another clone's `dvc pull` gets the same trajectories and `dvc status` is clean."""
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(ROOT / "dvc.yaml", repo / "dvc.yaml")
    shutil.copytree(ROOT / "src", repo / "src", ignore=shutil.ignore_patterns("__pycache__"))
    (repo / "params.yaml").write_text(_tiny_params())
    (repo / ".dvcignore").write_text("__pycache__/\n")
    dvc = str(Path(sys.executable).parent / "dvc")
    remote = tmp_path / "remote"
    for cmd in (["git", "init", "-q"], [dvc, "init", "-q"], [dvc, "config", "core.analytics", "false"],
                [dvc, "remote", "add", "-d", "team", str(remote)]):
        assert _run(cmd, repo).returncode == 0
    made = _run([dvc, "repro", "simulate"], repo)
    assert made.returncode == 0, made.stdout + made.stderr
    pushed = _run([dvc, "push", "data/md"], repo)
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    for cmd in (["git", "add", "-A"], ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "md"]):
        assert _run(cmd, repo).returncode == 0
    other = tmp_path / "other"
    assert _run(["git", "clone", "-q", str(repo), str(other)], tmp_path).returncode == 0
    assert not (other / "data" / "md").exists()
    pulled = _run([dvc, "pull", "data/md"], other)
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    mine = sorted(p.relative_to(repo) for p in (repo / "data" / "md").glob("*.h5"))
    theirs = sorted(p.relative_to(other) for p in (other / "data" / "md").glob("*.h5"))
    assert mine == theirs and len(mine) == 2
    assert all((repo / p).read_bytes() == (other / p).read_bytes() for p in mine)
    status = _run([dvc, "status", "simulate"], other)
    assert status.returncode == 0 and "changed" not in status.stdout, status.stdout
