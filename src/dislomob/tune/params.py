"""The best-parameters file of the ``tune`` stage and how the ``train`` stage applies it.

The file (JSON) holds ``params`` (width_f, width_b, width_e, depth, learning_rate) and a ``study`` record
(name, storage, trial number, validation loss in Angstrom). This module imports neither Optuna nor torch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from dislomob.config import TrainConfig
from dislomob.errors import InputFileError
from dislomob.tune.space import TUNED_KEYS


def read_tuned_params(path: str | Path) -> dict[str, Any]:
    """The ``params`` mapping of a best-parameters file; a missing file, bad JSON or a missing/unknown key
    raises InputFileError naming the file and key."""
    p = Path(path)
    if not p.is_file():
        raise InputFileError(f"tuned parameters file {p} not found (train.tuned_params={str(path)!r}): run "
                             "`dislomob tune` first, or set train.tuned_params: null to train with train.width/depth/"
                             "learning_rate")
    try:
        data = json.loads(p.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputFileError(f"{p}: unreadable tuned parameters file ({type(err).__name__}: {err})") from None
    params = data.get("params") if isinstance(data, dict) else None
    if not isinstance(params, dict):
        raise InputFileError(f"{p}: no 'params' mapping in the tuned parameters file")
    missing = [k for k in TUNED_KEYS if k not in params]
    unknown = sorted(set(params) - set(TUNED_KEYS))
    if missing or unknown:
        raise InputFileError(f"{p}: tuned params missing {missing} / unknown {unknown}: allowed exactly "
                             f"{list(TUNED_KEYS)}")
    return params


def apply_tuned_params(tc: TrainConfig, path: str | Path) -> TrainConfig:
    """``tc`` with width_f, width_b, width_e, depth and learning_rate taken from the best-parameters file
    at ``path``; a value that TrainConfig does not allow raises InputFileError naming key and value."""
    params = read_tuned_params(path)
    try:
        return TrainConfig.model_validate({**tc.model_dump(), **params})
    except ValidationError as err:
        bad = "; ".join(f"{'.'.join(str(x) for x in e['loc'])}={e.get('input')!r}: {e['msg']}" for e in err.errors())
        raise InputFileError(f"{path}: tuned parameter not allowed: {bad}") from None


def tuned_train_config(tc: TrainConfig) -> TrainConfig:
    """``tc`` with the tune stage's best parameters applied when ``tc.tuned_params`` names a file, else ``tc``
    (what every training of the pipeline, the train stage and the AL loops, starts from)."""
    return apply_tuned_params(tc, tc.tuned_params) if tc.tuned_params else tc
