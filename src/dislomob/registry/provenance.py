"""Where a registered law came from: the git commit of the code and the data versions DVC recorded.

Tags are strings (MLflow tags); a value that cannot be known (no git, no dvc.lock) says so instead of
being left out, so that a model version always answers the question.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

UNKNOWN = "unknown"


def git_tags(repo: str | Path = ".") -> dict[str, str]:
    """``git_commit`` (HEAD) and ``git_dirty`` (true when tracked files differ from HEAD) of ``repo``."""
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return {"git_commit": commit or UNKNOWN, "git_dirty": UNKNOWN if dirty is None else str(bool(dirty)).lower()}


def data_versions(lock_path: str | Path = "dvc.lock", prefix: str = "data/") -> dict[str, str]:
    """``data.<path>`` -> md5 of every DVC stage output under ``prefix`` recorded in ``lock_path``
    (e.g. data.data/graphs, data.data/al/graphs); ``data_version`` = unknown when there is no lock file."""
    path = Path(lock_path)
    if not path.is_file():
        return {"data_version": f"{UNKNOWN} (no {path})"}
    lock = yaml.safe_load(path.read_text()) or {}
    out: dict[str, str] = {}
    for stage in (lock.get("stages") or {}).values():
        for o in stage.get("outs") or []:
            p = str(o.get("path", ""))
            if p.startswith(prefix) and o.get("md5"):
                out[f"data.{p}"] = str(o["md5"])
    if not out:
        return {"data_version": f"{UNKNOWN} (no output under {prefix} in {path})"}
    return out


def file_sha256(*paths: str | Path) -> str:
    """SHA-256 of the concatenated bytes of ``paths`` (hex): the content identity of a registered law."""
    h = hashlib.sha256()
    for p in paths:
        h.update(Path(p).read_bytes())
    return h.hexdigest()


def compact(value: Any) -> str:
    """A JSON text of ``value`` without spaces (for tag values)."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)
