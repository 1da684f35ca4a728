"""Build the C++ example (examples/cpp) against the torch wheel's libtorch and compare it with the Python law.

This is the check that a DDD code linking the package gets the velocities of
:meth:`dislomob.ddd.law.MobilityLaw.velocities` (m/s).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dislomob.config import Config
from dislomob.ddd.law import MobilityLaw
from dislomob.ddd.network import DislocationNetwork
from dislomob.errors import DislomobError
from dislomob.export.contract import export_inputs
from dislomob.export.textio import parse_output, write_input

EXAMPLE_DIR = Path(__file__).resolve().parents[3] / "examples" / "cpp"
BUILD_TIMEOUT_S = 600
RUN_TIMEOUT_S = 300


class CppExampleError(DislomobError, RuntimeError):
    """The C++ example did not build or run; carries the tool's last output lines."""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["TORCH_DIR"] = os.path.dirname(torch.__file__)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    return env


def build_example(binary: str | Path, example_dir: str | Path = EXAMPLE_DIR) -> float:
    """Compile examples/cpp/main.cpp with its build.sh into ``binary``; returns the build time (s)."""
    script = Path(example_dir) / "build.sh"
    if not script.is_file():
        raise CppExampleError(f"C++ example build script {script} not found")
    t0 = time.perf_counter()
    res = subprocess.run(["bash", str(script), str(binary)], capture_output=True, text=True, env=_env(),
                         timeout=BUILD_TIMEOUT_S)
    if res.returncode != 0:
        raise CppExampleError(f"{script} failed (exit {res.returncode}): {res.stderr[-2000:]}")
    return time.perf_counter() - t0


def run_example(binary: str | Path, package: str | Path, network: DislocationNetwork, cfg: Config,
                workdir: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(velocity (n, 3), sigma (n,)) m/s in network node order from the C++ example run on ``network``."""
    inputs = export_inputs(network, cfg)
    path = Path(workdir) / "network_contract.txt"
    write_input(path, inputs)
    res = subprocess.run([str(binary), str(package), str(path)], capture_output=True, text=True,
                         timeout=RUN_TIMEOUT_S)
    if res.returncode != 0:
        raise CppExampleError(f"{binary} exited {res.returncode}: {res.stderr[-2000:]}")
    return parse_output(res.stdout, network.n_nodes)


def compare_with_python(package: str | Path, ensemble_path: str | Path, network: DislocationNetwork, cfg: Config,
                        workdir: str | Path | None = None, binary: str | Path | None = None) -> dict[str, Any]:
    """Build (unless ``binary`` is given) and run the C++ example on ``network``; max |C++ - Python| (m/s) of
    velocity and sigma against MobilityLaw.velocities, and the build time (s)."""
    with tempfile.TemporaryDirectory(prefix="dislomob_cpp_") as tmp:
        work = Path(workdir) if workdir is not None else Path(tmp)
        build_s = None
        if binary is None:
            binary = work / "dislomob_velocities"
            build_s = build_example(binary)
        v_cpp, s_cpp = run_example(binary, package, network, cfg, work)
    v_py, s_py = MobilityLaw.from_path(ensemble_path, cfg).velocities(network)
    return {"max_abs_diff_velocity_m_per_s": float(np.abs(v_cpp - v_py).max()),
            "max_abs_diff_sigma_m_per_s": float(np.abs(s_cpp - s_py).max()),
            "max_abs_velocity_m_per_s": float(np.abs(v_py).max()), "cpp_build_seconds": build_s,
            "velocity_cpp": v_cpp, "sigma_cpp": s_cpp, "velocity_python": v_py, "sigma_python": s_py}
