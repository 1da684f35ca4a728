"""A DDD code loads and calls the law where LAMMPS is not installed (loading params must not need it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ddd_helpers import DIPOLE_FILE, untrained_law_file
from dislomob.ddd.law import MobilityLaw
from dislomob.ddd.network import read_network

HIDE_LAMMPS = "import sys; sys.modules['lammps'] = None\n"


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", HIDE_LAMMPS + code], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).parent)


def test_the_law_loads_and_predicts_with_lammps_hidden(tmp_path: Path) -> None:
    law_file = untrained_law_file(tmp_path, members=4, seed=3)
    v_here, s_here = MobilityLaw.from_path(law_file).velocities(read_network(DIPOLE_FILE))
    out = _run(f"""
import importlib.util, json
from dislomob.config import Config
from dislomob.ddd.law import MobilityLaw
from dislomob.ddd.network import read_network
assert importlib.util.find_spec('lammps') is None
v, s = MobilityLaw.from_path({str(law_file)!r}, Config()).velocities(read_network({str(DIPOLE_FILE)!r}))
print(json.dumps({{"v": v.tolist(), "s": s.tolist()}}))
""")
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(got["v"], v_here, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(got["s"], s_here, rtol=1e-12, atol=1e-9)


def test_a_missing_potential_is_still_named_where_lammps_is_installed() -> None:
    from dislomob.config import ConfigError, parse_config

    with pytest.raises(ConfigError, match="NoSuch.eam.fs"):
        parse_config({"material": {"potential": "NoSuch.eam.fs"}})
