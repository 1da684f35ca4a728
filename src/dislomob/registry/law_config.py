"""The featurization settings a law predicts with, as a JSON artifact beside its weights.

A registered law must rebuild the graphs exactly as it was trained to read them: the ``material`` section
(elastic constants, lattice) and the ``features`` section (Gauss points, core width, images, ``dt_ps``) of
the config. They travel as plain JSON (never a pickled object) and come back as a validated
:class:`dislomob.config.Config` whose other sections take the demo defaults (the law does not read them).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dislomob.atomic import write_json
from dislomob.config import Config, ConfigError, parse_config
from dislomob.errors import InputFileError

LAW_CONFIG_FORMAT = 1
LAW_CONFIG_SECTIONS = ("material", "features")


def law_config(cfg: Config) -> dict[str, Any]:
    """The JSON-ready law config of ``cfg``: format version, ``material``, ``features`` (dt: ``features.dt_ps``)."""
    sections = {s: getattr(cfg, s).model_dump(mode="json") for s in LAW_CONFIG_SECTIONS}
    return {"format_version": LAW_CONFIG_FORMAT, **sections}


def write_law_config(cfg: Config, path: str | Path) -> None:
    """Write :func:`law_config` of ``cfg`` to ``path`` atomically."""
    write_json(path, law_config(cfg))


def config_from_law_config(data: Any, where: str = "law config") -> Config:
    """A validated Config from a law config mapping; errors name ``where`` and the bad key or value."""
    if not isinstance(data, dict):
        raise InputFileError(f"{where}: expected a JSON object, got {type(data).__name__}")
    version = data.get("format_version")
    if version != LAW_CONFIG_FORMAT:
        raise InputFileError(f"{where}: format_version {version!r} not supported: allowed {LAW_CONFIG_FORMAT}")
    unknown = sorted(set(data) - {"format_version", *LAW_CONFIG_SECTIONS})
    missing = [s for s in LAW_CONFIG_SECTIONS if s not in data]
    if unknown or missing:
        raise InputFileError(f"{where}: sections must be exactly {list(LAW_CONFIG_SECTIONS)} "
                             f"(unknown {unknown}, missing {missing})")
    try:
        return parse_config({s: data[s] for s in LAW_CONFIG_SECTIONS})
    except ConfigError as err:
        raise InputFileError(f"{where}: {err}") from None


def read_law_config(path: str | Path) -> Config:
    """The Config of a law config JSON file written by :func:`write_law_config`; errors name the path."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except OSError as err:
        raise InputFileError(f"{p}: cannot read law config ({err.strerror or err})") from None
    except json.JSONDecodeError as err:
        raise InputFileError(f"{p}: law config is not valid JSON (line {err.lineno}: {err.msg})") from None
    return config_from_law_config(data, str(p))
