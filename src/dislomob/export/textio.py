"""The text files of the C++ example (examples/cpp): a network in the contract layout in, velocities out.

Input (docs/export_contract.md), whitespace-separated, floats written exactly (17 significant digits)::

    dislomob-export-input 1
    nodes N
    quadrature Q
    temperature_k T
    cell  c00 c01 c02  c10 c11 c12  c20 c21 c22            (rows = cell vectors, Angstrom)
    node_rows
    node_of x y z end bx by bz nx ny nz flags              (N rows; row g = canonical node / segment g)
    quadrature_rows
    segment u s00 s01 s02 s10 s11 s12 s20 s21 s22          (Q rows; GPa)

Output (what ``dislomob_velocities`` prints): a ``#`` header line, then N rows ``node vx vy vz sigma`` (m/s),
``node`` being the network's node index.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dislomob.atomic import write_bytes
from dislomob.errors import InputFileError
from dislomob.export.contract import ExportInputs

FORMAT_VERSION = 1


def _row(values) -> str:
    return " ".join(v if isinstance(v, str) else (str(int(v)) if isinstance(v, (int, np.integer)) else repr(float(v)))
                    for v in values)


def input_text(inputs: ExportInputs) -> str:
    """The input file text of ``inputs`` (format in the module docstring)."""
    lines = [f"dislomob-export-input {FORMAT_VERSION}", f"nodes {inputs.n_nodes}", f"quadrature {len(inputs.q_u)}",
             f"temperature_k {float(inputs.temperature_k[0])!r}", "cell " + _row(inputs.cell.ravel()), "node_rows"]
    for g in range(inputs.n_nodes):
        lines.append(_row([inputs.node_of[g], *inputs.positions[g], inputs.segments[g, 1], *inputs.burgers[g],
                           *inputs.normals[g], inputs.node_flags[g]]))
    lines.append("quadrature_rows")
    for p in range(len(inputs.q_u)):
        lines.append(_row([inputs.q_segment[p], inputs.q_u[p], *inputs.q_stress[p].ravel()]))
    return "\n".join(lines) + "\n"


def write_input(path: str | Path, inputs: ExportInputs) -> None:
    """Write ``inputs`` as the C++ example's input file, atomically."""
    write_bytes(path, input_text(inputs).encode())


def parse_output(text: str, n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """(velocity (n, 3) m/s, sigma (n,) m/s) in the network's node order from the C++ example's output."""
    rows = [ln.split() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    if len(rows) != n_nodes or any(len(r) != 5 for r in rows):
        raise InputFileError(f"C++ output: expected {n_nodes} rows of 5 numbers (node vx vy vz sigma), got "
                             f"{len(rows)} rows: {text[:200]!r}")
    table = np.array([[float(v) for v in r] for r in rows])
    node = table[:, 0].astype(np.int64)
    velocity, sigma = np.zeros((n_nodes, 3)), np.zeros(n_nodes)
    velocity[node], sigma[node] = table[:, 1:4], table[:, 4]
    return velocity, sigma
