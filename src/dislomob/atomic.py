"""Atomic file writes: write to a temporary file in the same folder, then rename.

Temporary files are named ``.<name>.<random><suffix>.tmp`` (pattern :data:`TMP_GLOB`); a killed write can
leave one behind, so every stage removes them from its output folders at start
(:func:`remove_stale_temps`) and ``.gitignore`` / ``.dvcignore`` ignore them. Torch files are written
through :func:`save_torch`, which gives identical bytes for identical content.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()


@contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix + ".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():
            os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp makes 0600; a plain file would be 0666 - umask
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


TMP_GLOB = ".*.tmp"


def remove_stale_temps(folder: str | Path) -> list[Path]:
    """Delete temporary files left in ``folder`` by killed atomic writes; return what was removed."""
    folder = Path(folder)
    removed = []
    if folder.is_dir():
        for tmp in sorted(folder.glob(TMP_GLOB)):
            if tmp.is_file():
                tmp.unlink(missing_ok=True)
                removed.append(tmp)
    return removed


def write_bytes(path: str | Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` atomically unless the file already holds exactly these bytes.

    Returns True when the file was (re)written; an unchanged file keeps its modification time.
    """
    path = Path(path)
    if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
        return False
    with atomic_path(path, suffix=path.suffix) as tmp:
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    return True


def torch_bytes(obj: Any) -> bytes:
    """``torch.save`` of ``obj`` into memory: the archive's inner folder is always ``archive/`` (a file
    name would be recorded instead when saving to a path), so identical content gives identical bytes."""
    import io

    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def save_torch(path: str | Path, obj: Any) -> bool:
    """Save ``obj`` with torch to ``path`` atomically and byte-reproducibly; True when the file changed."""
    return write_bytes(path, torch_bytes(obj))


def write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (np.floating, np.integer, np.bool_)):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")
