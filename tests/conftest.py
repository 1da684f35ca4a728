"""Shared fixtures: small real configurations for LAMMPS/OVITO tests."""

from __future__ import annotations

import pytest

from dislomob.config import Config, parse_config


def small_config(**md) -> Config:
    """The demo config with a small dipole box and short runs, overridden by ``md`` keys."""
    data = Config().model_dump()
    data["md"].update({"duration_ps": 3.0, "equilibrate_ps": 0.5, "settle_ps": 0.0, "minimize_steps": 500, "threads": 2,
                       "box": {"glide_nm": 4.0, "line_nm": 3.0, "height_nm": 12.0}})
    data["md"].update(md)
    return parse_config(data)


@pytest.fixture
def cfg() -> Config:
    return small_config()
