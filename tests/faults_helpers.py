"""Tiny real inputs for the fault-injection tests: a params file in tmp_path and synthetic (analytic)
dipole trajectories written as real trajectory files, featurized and trained by the real stages."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from dislomob.config import Config
from dislomob.md.trajectory import Trajectory, write_trajectory
from features_helpers import dipole_frame, meta

REPO = Path(__file__).resolve().parents[1]
CONDITIONS = [(0.0, 300.0, 0.25), (45.0, 300.0, 0.5), (90.0, 300.0, 0.25), (0.0, 500.0, 0.5), (45.0, 500.0, 0.25),
              (90.0, 500.0, 0.5)]


def write_dataset(md_dir: Path, n: int = 6, n_frames: int = 5, spacing_ps: float = 0.5) -> list[Path]:
    """``n`` trajectory files of gliding edge dipoles (frames every ``spacing_ps``) under distinct conditions."""
    md_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(n):
        angle, temp, stress = CONDITIONS[k % len(CONDITIONS)]
        m = meta(key=f"run{k}", angle_deg=angle, requested_angle_deg=angle, temperature_k=temp, stress_gpa=stress,
                 sample_every_ps=spacing_ps)
        speed = 1.0 + 0.5 * k
        frames = [dipole_frame(i * spacing_ps, speed * i * spacing_ps) for i in range(n_frames)]
        path = md_dir / f"run{k}.h5"
        write_trajectory(path, Trajectory(m, frames))
        paths.append(path)
    return paths


def params(tmp: Path, **sections) -> dict:
    """A tiny params mapping whose outputs all live under ``tmp``; ``sections`` update its sections."""
    data = Config().model_dump(mode="json")
    data["dataset"]["out_dir"] = str(tmp / "md")
    data["features"].update({"images": 1, "line_images": 1, "out_dir": str(tmp / "graphs")})
    data["train"].update({"members": 2, "width": 4, "depth": 1, "epochs": 3, "batch_size": 8, "baseline_steps": 20,
                          "tracking_uri": f"sqlite:///{tmp}/mlflow/mlflow.db", "model_dir": str(tmp / "models"),
                          "tuned_params": None})
    for name, upd in sections.items():
        data[name].update(upd)
    return data


def write_params(tmp: Path, name: str = "params.yaml", **sections) -> Path:
    path = tmp / name
    path.write_text(yaml.safe_dump(params(tmp, **sections), sort_keys=False))
    return path


def cli(*args: str, timeout: float = 120, cwd: Path | None = None, **kw) -> subprocess.CompletedProcess:
    """Run the ``dislomob`` command line in a fresh Python (one torch thread)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
    return subprocess.run([sys.executable, "-m", "dislomob.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd or REPO, env=env, **kw)


def snapshot_files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> bytes), hidden ones included."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def damage(path: Path, how: str) -> None:
    """Make ``path`` truncated (half its bytes), empty, or junk (random-looking bytes)."""
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "junk":
        path.write_bytes(bytes((i * 97 + 13) % 256 for i in range(2048)))
    else:
        raise ValueError(how)
