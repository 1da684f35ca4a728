"""The dislocation network a DDD code hands the mobility law, its validation and its JSON file format.

A :class:`DislocationNetwork` holds, in internal units (Angstrom, K, GPa): node positions, segments as
node index pairs (i -> j; the segment's line sense points from i to j), one Burgers vector and one
slip-plane normal per segment, an optional periodic cell (rows = cell vectors), the temperature, the
applied stress, optional per-node flags (surface, pinned) and, optionally, the stress a DDD code already
computed at its own quadrature points (any number per segment, given as a flat list of points).

Constructing one validates it (:func:`validate_network`); every error is a
:class:`dislomob.errors.InputFileError` that names the field, the index and the bad value.
:func:`read_network` / :func:`write_network` read and write the JSON format of
``docs/ddd_network_format.md`` (explicit ``units`` object, ``format_version``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dislomob.atomic import write_bytes
from dislomob.errors import InputFileError

FORMAT_VERSION = 1
NODE_SURFACE = 1
NODE_PINNED = 2
LENGTH_UNITS: dict[str, float | None] = {"angstrom": 1.0, "nm": 10.0, "b": None}
STRESS_UNITS: dict[str, float | None] = {"GPa": 1.0, "MPa": 1e-3, "Pa": 1e-9, "bar": 1e-4, "mu": None}
TEMPERATURE_UNITS: dict[str, float] = {"K": 1.0}
MIN_LENGTH_ANGSTROM = 1e-6
MIN_NORMAL_NORM = 1e-12
BURGERS_RESIDUAL_REL_TOL = 1e-4
STRESS_ASYMMETRY_REL_TOL = 1e-8
STRESS_ASYMMETRY_ABS_TOL_GPA = 1e-9

_REQUIRED_KEYS = ("format_version", "units", "positions", "segments", "burgers", "normals", "temperature",
                  "applied_stress")
_OPTIONAL_KEYS = ("comment", "material", "cell", "surface_nodes", "pinned_nodes", "quadrature")
_MATERIAL_KEYS = ("burgers_magnitude_angstrom", "shear_modulus_gpa")
_QUADRATURE_KEYS = ("positions", "segment", "stress")
_REQUIRED_FIELDS = ("positions_angstrom", "segments", "burgers_angstrom", "normals", "temperature_k",
                    "applied_stress_gpa")
_UNIT_TABLES: dict[str, dict[str, Any]] = {"length": LENGTH_UNITS, "stress": STRESS_UNITS,
                                           "temperature": TEMPERATURE_UNITS}


@dataclass(frozen=True, eq=False)
class DislocationNetwork:
    """A DDD dislocation network in Angstrom, K and GPa; validated on construction, arrays read-only.

    ``segments[k] = (i, j)`` runs from node i to node j and carries ``burgers_angstrom[k]`` on the plane
    of unit normal ``normals[k]`` (normalized on construction). With ``cell_angstrom`` (rows = cell
    vectors) a segment is the minimum image of ``positions[j] - positions[i]``. ``node_flags`` holds
    bits :data:`NODE_SURFACE` (a line may end there: Burgers vector not conserved) and
    :data:`NODE_PINNED` (does not move). Quadrature point p lies at ``quad_positions_angstrom[p]`` on
    segment ``quad_segments[p]`` with stress ``quad_stress_gpa[p]``; the three are given together or not.
    """

    positions_angstrom: np.ndarray
    segments: np.ndarray
    burgers_angstrom: np.ndarray
    normals: np.ndarray
    temperature_k: float
    applied_stress_gpa: np.ndarray
    cell_angstrom: np.ndarray | None = None
    node_flags: np.ndarray | None = None
    quad_positions_angstrom: np.ndarray | None = None
    quad_segments: np.ndarray | None = None
    quad_stress_gpa: np.ndarray | None = None

    def __post_init__(self) -> None:
        for name in _REQUIRED_FIELDS:
            if getattr(self, name) is None:
                raise InputFileError(f"{name} is required (got None)")
        for name in ("positions_angstrom", "burgers_angstrom", "normals", "applied_stress_gpa", "cell_angstrom",
                     "quad_positions_angstrom", "quad_stress_gpa"):
            _set(self, name, _float_array(name, getattr(self, name)))
        for name in ("segments", "node_flags", "quad_segments"):
            _set(self, name, _int_array(name, getattr(self, name)))
        _set(self, "temperature_k", _float_scalar("temperature_k", self.temperature_k))
        validate_network(self)
        _set(self, "normals", self.normals / np.linalg.norm(self.normals, axis=1, keepdims=True))
        for name in ("positions_angstrom", "segments", "burgers_angstrom", "normals", "applied_stress_gpa",
                     "cell_angstrom", "node_flags", "quad_positions_angstrom", "quad_segments", "quad_stress_gpa"):
            value = getattr(self, name)
            if value is not None:
                value.flags.writeable = False

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return len(self.positions_angstrom)

    @property
    def n_segments(self) -> int:
        """Number of segments."""
        return len(self.segments)

    @property
    def has_quadrature_stress(self) -> bool:
        """True when the DDD code's own quadrature-point stress is given."""
        return self.quad_stress_gpa is not None


def _set(network: DislocationNetwork, name: str, value: Any) -> None:
    object.__setattr__(network, name, value)


def _float_array(name: str, value: Any) -> np.ndarray | None:
    if value is None:
        return None
    try:
        return np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputFileError(f"{name}: not a numeric array ({exc})") from None


def _int_array(name: str, value: Any) -> np.ndarray | None:
    if value is None:
        return None
    try:
        raw = np.array(value)
        as_float = raw.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise InputFileError(f"{name}: not an integer array ({exc})") from None
    bad = ~np.isfinite(as_float) | (as_float != np.round(as_float))
    if bad.any():
        first = tuple(np.argwhere(bad)[0])
        raise InputFileError(f"{name}[{_index(first)}] = {float(as_float[first])!r}: indices and flags must be integers")
    return as_float.astype(np.int64)


def _float_scalar(name: str, value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InputFileError(f"{name} = {value!r}: not a number") from None


def _index(idx: np.ndarray | tuple) -> str:
    return ", ".join(str(int(i)) for i in np.atleast_1d(idx))


def _fmt(v: np.ndarray) -> str:
    return "[" + ", ".join(f"{float(x):.6g}" for x in np.ravel(v)) + "]"


def minimum_image(vectors_angstrom: np.ndarray, cell_angstrom: np.ndarray | None) -> np.ndarray:
    """Minimum-image versions (k,3) Angstrom of difference vectors in a periodic cell (rows = cell vectors)."""
    d = np.asarray(vectors_angstrom, dtype=np.float64)
    if cell_angstrom is None:
        return d.copy()
    frac = d @ np.linalg.inv(cell_angstrom)
    return (frac - np.round(frac)) @ cell_angstrom


def segment_vectors(network: DislocationNetwork) -> np.ndarray:
    """Segment vectors (m,3) Angstrom from node i to node j, minimum image when the network has a cell."""
    p = network.positions_angstrom
    return minimum_image(p[network.segments[:, 1]] - p[network.segments[:, 0]], network.cell_angstrom)


def burgers_residuals(network: DislocationNetwork) -> np.ndarray:
    """Per-node sum (n,3) Angstrom of outgoing minus incoming Burgers vectors (zero where b is conserved)."""
    res = np.zeros((network.n_nodes, 3))
    np.add.at(res, network.segments[:, 0], network.burgers_angstrom)
    np.add.at(res, network.segments[:, 1], -network.burgers_angstrom)
    return res


def _check_shape(name: str, value: np.ndarray, shape: tuple[int | None, ...], meaning: str) -> None:
    if value.ndim != len(shape) or any(s is not None and s != v for s, v in zip(shape, value.shape)):
        expected = "(" + ", ".join("any" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
        raise InputFileError(f"{name} has shape {value.shape}: expected {expected} ({meaning})")


def _check_finite(name: str, value: np.ndarray) -> None:
    bad = ~np.isfinite(value)
    if bad.any():
        first = tuple(np.argwhere(bad)[0])
        raise InputFileError(f"{name}[{_index(first)}] = {float(value[first])!r}: values must be finite "
                             f"({int(bad.sum())} non-finite value(s) in {name})")


def _check_symmetric(name: str, stress: np.ndarray) -> None:
    asym = np.abs(stress - np.swapaxes(stress, -1, -2))
    scale = np.abs(stress).max(axis=(-1, -2), initial=0.0)
    tol = STRESS_ASYMMETRY_ABS_TOL_GPA + STRESS_ASYMMETRY_REL_TOL * scale
    bad = asym.max(axis=(-1, -2), initial=0.0) > tol
    if np.any(bad):
        where = () if stress.ndim == 2 else tuple(np.argwhere(np.atleast_1d(bad))[0])
        s = stress[where]
        i, j = np.unravel_index(int(np.argmax(np.abs(s - s.T))), (3, 3))
        label = name if not where else f"{name}[{_index(where)}]"
        raise InputFileError(f"{label} is not symmetric: [{i}, {j}] = {s[i, j]:.9g} but [{j}, {i}] = {s[j, i]:.9g} GPa")


def _check_nonzero_rows(name: str, rows: np.ndarray, minimum: float, unit: str) -> None:
    norms = np.linalg.norm(rows, axis=1)
    bad = np.flatnonzero(norms <= minimum)
    if len(bad):
        k = int(bad[0])
        raise InputFileError(f"{name}[{k}] = {_fmt(rows[k])}{unit} has zero length (|.| = {norms[k]:.3g}); "
                             f"{len(bad)} such row(s)")


def validate_network(network: DislocationNetwork) -> None:
    """Raise InputFileError naming the field, index and value of the first thing wrong with ``network``.

    Checks: shapes; finite values everywhere; node indices of segments and segment indices of quadrature
    points in range; non-zero Burgers vectors and normals; non-zero segment lengths (minimum image in the
    cell); every node on a segment; Burgers vector conserved at every node without the surface flag;
    symmetric stresses; a non-singular cell; temperature >= 0 K; node flags in {0..3}.
    """
    has_quadrature = _validate_shapes(network)
    _validate_values(network)
    _validate_topology(network, has_quadrature)


def _validate_shapes(network: DislocationNetwork) -> bool:
    """Shape checks; returns whether the quadrature arrays are given (all three or none, else an error)."""
    _check_shape("positions_angstrom", network.positions_angstrom, (None, 3), "one row x, y, z per node")
    _check_shape("segments", network.segments, (None, 2), "one row (i, j) of node indices per segment")
    n, m = network.n_nodes, network.n_segments
    _check_shape("burgers_angstrom", network.burgers_angstrom, (m, 3), "one Burgers vector per segment")
    _check_shape("normals", network.normals, (m, 3), "one slip-plane normal per segment")
    _check_shape("applied_stress_gpa", network.applied_stress_gpa, (3, 3), "a 3x3 stress tensor")
    if network.cell_angstrom is not None:
        _check_shape("cell_angstrom", network.cell_angstrom, (3, 3), "rows = the three cell vectors")
    if network.node_flags is not None:
        _check_shape("node_flags", network.node_flags, (n,), "one flag per node")
    quad = (network.quad_positions_angstrom, network.quad_segments, network.quad_stress_gpa)
    quad_names = ("quad_positions_angstrom", "quad_segments", "quad_stress_gpa")
    given = [v is not None for v in quad]
    if any(given) and not all(given):
        missing = [name for name, g in zip(quad_names, given) if not g]
        raise InputFileError(f"quadrature stress incomplete: {', '.join(missing)} missing "
                             f"(give all of {', '.join(quad_names)} or none)")
    if all(given):
        _check_shape("quad_segments", network.quad_segments, (None,), "one segment index per quadrature point")
        q = len(network.quad_segments)
        _check_shape("quad_positions_angstrom", network.quad_positions_angstrom, (q, 3), "one position per quadrature point")
        _check_shape("quad_stress_gpa", network.quad_stress_gpa, (q, 3, 3), "one 3x3 stress per quadrature point")
    return all(given)


def _validate_values(network: DislocationNetwork) -> None:
    """Finite values, temperature, cell, flags, non-zero Burgers vectors and normals, symmetric stresses."""
    for name in ("positions_angstrom", "burgers_angstrom", "normals", "applied_stress_gpa", "cell_angstrom",
                 "quad_positions_angstrom", "quad_stress_gpa"):
        value = getattr(network, name)
        if value is not None:
            _check_finite(name, value)
    if not math.isfinite(network.temperature_k) or network.temperature_k < 0:
        raise InputFileError(f"temperature_k = {network.temperature_k!r}: allowed a finite value >= 0 K")
    if network.cell_angstrom is not None:
        det = float(np.linalg.det(network.cell_angstrom))
        if abs(det) < 1e-6:
            raise InputFileError(f"cell_angstrom is singular (determinant {det:.3g} Angstrom^3): rows must be "
                                 f"three independent cell vectors")
    if network.node_flags is not None:
        bad = np.flatnonzero((network.node_flags < 0) | (network.node_flags > NODE_SURFACE | NODE_PINNED))
        if len(bad):
            raise InputFileError(f"node_flags[{bad[0]}] = {network.node_flags[bad[0]]}: allowed 0 (free), "
                                 f"{NODE_SURFACE} (surface), {NODE_PINNED} (pinned), 3 (both)")

    _check_nonzero_rows("burgers_angstrom", network.burgers_angstrom, MIN_LENGTH_ANGSTROM, " Angstrom")
    _check_nonzero_rows("normals", network.normals, MIN_NORMAL_NORM, "")
    _check_symmetric("applied_stress_gpa", network.applied_stress_gpa)
    if network.quad_stress_gpa is not None and len(network.quad_stress_gpa):
        _check_symmetric("quad_stress_gpa", network.quad_stress_gpa)


def _validate_topology(network: DislocationNetwork, has_quadrature: bool) -> None:
    """Indices in range, non-zero segment lengths, no isolated node, Burgers vector conservation."""
    seg = network.segments
    n, m = network.n_nodes, network.n_segments
    out = np.flatnonzero((seg < 0).any(1) | (seg >= n).any(1))
    if len(out):
        k = int(out[0])
        bad_node = int(seg[k][(seg[k] < 0) | (seg[k] >= n)][0])
        raise InputFileError(f"segments[{k}] = {seg[k].tolist()}: node index {bad_node} out of range 0..{n - 1} "
                             f"({n} nodes); {len(out)} dangling segment(s)")
    if has_quadrature:
        qs = network.quad_segments
        out = np.flatnonzero((qs < 0) | (qs >= m))
        if len(out):
            p = int(out[0])
            raise InputFileError(f"quad_segments[{p}] = {qs[p]}: quadrature point {p} refers to a missing segment "
                                 f"(allowed 0..{m - 1}, {m} segments)")

    lengths = np.linalg.norm(segment_vectors(network), axis=1)
    short = np.flatnonzero(lengths <= MIN_LENGTH_ANGSTROM)
    if len(short):
        k = int(short[0])
        where = " (minimum image in the cell)" if network.cell_angstrom is not None else ""
        raise InputFileError(f"segments[{k}] = {seg[k].tolist()} has zero length{where}: "
                             f"{lengths[k]:.3g} Angstrom; {len(short)} zero-length segment(s)")
    lonely = np.flatnonzero(np.bincount(seg.ravel(), minlength=n) == 0)
    if len(lonely):
        raise InputFileError(f"node {lonely[0]} belongs to no segment; {len(lonely)} such node(s): "
                             f"{lonely[:10].tolist()}")
    res = burgers_residuals(network)
    if network.node_flags is not None:
        res[(network.node_flags & NODE_SURFACE) != 0] = 0.0
    scale = float(np.linalg.norm(network.burgers_angstrom, axis=1).max(initial=0.0))
    res_norm = np.linalg.norm(res, axis=1)
    bad = np.flatnonzero(res_norm > BURGERS_RESIDUAL_REL_TOL * scale)
    if len(bad):
        i = int(bad[0])
        raise InputFileError(f"Burgers vector not conserved at node {i} (not a surface node): outgoing minus "
                             f"incoming b = {_fmt(res[i])} Angstrom (|residual| {res_norm[i]:.6g}); "
                             f"{len(bad)} such node(s)")


def _unit(units: dict, key: str) -> tuple[str, float | None]:
    table = _UNIT_TABLES[key]
    if key not in units:
        raise InputFileError(f"units.{key} missing: allowed {', '.join(repr(u) for u in table)}")
    given = units[key]
    for name, factor in table.items():
        if isinstance(given, str) and given.lower() == name.lower():
            return name, factor
    raise InputFileError(f"units.{key} = {given!r} unknown: allowed {', '.join(repr(u) for u in table)}")


def _material_value(material: dict, key: str, argument: float | None, needed_by: str) -> float:
    in_file = material.get(key)
    if in_file is not None:
        in_file = _float_scalar(f"material.{key}", in_file)
        if not (math.isfinite(in_file) and in_file > 0):
            raise InputFileError(f"material.{key} = {in_file!r}: allowed a finite value > 0")
    if argument is not None and in_file is not None and not math.isclose(argument, in_file, rel_tol=1e-9):
        raise InputFileError(f"material.{key} = {in_file!r} in the file but {key}={argument!r} given: they must agree")
    value = argument if argument is not None else in_file
    if value is None:
        raise InputFileError(f"{needed_by} needs material.{key} (in the file's material object or as the "
                             f"{key} argument of read_network)")
    if not (math.isfinite(value) and value > 0):
        raise InputFileError(f"{key} = {value!r}: allowed a finite value > 0")
    return float(value)


def _rows(value: Any, *trailing: int) -> Any:
    return np.zeros((0, *trailing)) if isinstance(value, list) and not value else value


def network_from_dict(data: dict[str, Any], burgers_magnitude_angstrom: float | None = None,
                      shear_modulus_gpa: float | None = None) -> DislocationNetwork:
    """A validated network (Angstrom, K, GPa) from the parsed JSON format; |b| (Angstrom) and mu (GPa)
    resolve the "b" and "mu" units when the file's material object lacks them."""
    if not isinstance(data, dict):
        raise InputFileError(f"top level is a {type(data).__name__}: expected a JSON object")
    unknown = sorted(set(data) - set(_REQUIRED_KEYS) - set(_OPTIONAL_KEYS))
    if unknown:
        raise InputFileError(f"unknown key(s) {unknown}: allowed {list(_REQUIRED_KEYS + _OPTIONAL_KEYS)}")
    missing = [k for k in _REQUIRED_KEYS if k not in data]
    if missing:
        raise InputFileError(f"required key(s) missing: {missing}")
    version = data["format_version"]
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise InputFileError(f"format_version = {version!r} not supported: allowed {FORMAT_VERSION}")
    units = data["units"]
    if not isinstance(units, dict):
        raise InputFileError(f"units = {units!r}: expected an object with keys {list(_UNIT_TABLES)}")
    extra = sorted(set(units) - set(_UNIT_TABLES))
    if extra:
        raise InputFileError(f"units: unknown key(s) {extra}: allowed {list(_UNIT_TABLES)}")
    material = data.get("material") or {}
    if not isinstance(material, dict) or set(material) - set(_MATERIAL_KEYS):
        raise InputFileError(f"material = {material!r}: expected an object with keys {list(_MATERIAL_KEYS)}")
    length_name, length = _unit(units, "length")
    stress_name, stress = _unit(units, "stress")
    _, temperature = _unit(units, "temperature")
    if length is None:
        length = _material_value(material, "burgers_magnitude_angstrom", burgers_magnitude_angstrom,
                                 f"units.length = {length_name!r}")
    if stress is None:
        stress = _material_value(material, "shear_modulus_gpa", shear_modulus_gpa, f"units.stress = {stress_name!r}")

    positions = _scaled("positions", _rows(data["positions"], 3), length)
    flags = None
    if "surface_nodes" in data or "pinned_nodes" in data:
        n = positions.shape[0] if positions.ndim else 0
        flags = np.zeros(n, dtype=np.int64)
        for key, bit in (("surface_nodes", NODE_SURFACE), ("pinned_nodes", NODE_PINNED)):
            idx = _int_array(key, data.get(key, []))
            if idx.ndim != 1:
                raise InputFileError(f"{key} has shape {idx.shape}: expected a flat list of node indices")
            out = np.flatnonzero((idx < 0) | (idx >= n))
            if len(out):
                raise InputFileError(f"{key}[{out[0]}] = {idx[out[0]]}: node index out of range 0..{n - 1} ({n} nodes)")
            flags[idx] |= bit
    quad: dict[str, Any] = {}
    if data.get("quadrature") is not None:
        q = data["quadrature"]
        if not isinstance(q, dict) or set(q) != set(_QUADRATURE_KEYS):
            raise InputFileError(f"quadrature: expected an object with exactly the keys {list(_QUADRATURE_KEYS)}")
        quad = {"quad_positions_angstrom": _scaled("quadrature.positions", _rows(q["positions"], 3), length),
                "quad_segments": q["segment"],
                "quad_stress_gpa": _scaled("quadrature.stress", _rows(q["stress"], 3, 3), stress)}
    cell = data.get("cell")
    return DislocationNetwork(
        positions_angstrom=positions,
        segments=_rows(data["segments"], 2),
        burgers_angstrom=_scaled("burgers", _rows(data["burgers"], 3), length),
        normals=_rows(data["normals"], 3),
        temperature_k=_float_scalar("temperature", data["temperature"]) * temperature,
        applied_stress_gpa=_scaled("applied_stress", data["applied_stress"], stress),
        cell_angstrom=None if cell is None else _scaled("cell", cell, length),
        node_flags=flags,
        **quad,
    )


def _scaled(name: str, value: Any, factor: float) -> np.ndarray:
    if value is None:
        raise InputFileError(f"{name} is null: expected an array of numbers")
    return _float_array(name, value) * factor


def read_network(path: str | Path, burgers_magnitude_angstrom: float | None = None,
                 shear_modulus_gpa: float | None = None) -> DislocationNetwork:
    """Read and validate a network JSON file, converted to Angstrom, K and GPa; errors name the path.

    ``burgers_magnitude_angstrom`` (Angstrom) and ``shear_modulus_gpa`` (GPa) resolve the "b" and "mu"
    units when the file's ``material`` object does not give them (both given: they must agree).
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise InputFileError(f"{path}: cannot read network file ({exc.strerror or exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputFileError(f"{path}: not valid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    try:
        return network_from_dict(data, burgers_magnitude_angstrom, shear_modulus_gpa)
    except InputFileError as exc:
        raise InputFileError(f"{path}: {exc}") from None


def network_to_dict(network: DislocationNetwork, comment: str | None = None) -> dict[str, Any]:
    """The JSON-format object of ``network`` in internal units (angstrom, GPa, K)."""
    out: dict[str, Any] = {"format_version": FORMAT_VERSION}
    if comment:
        out["comment"] = comment
    out["units"] = {"length": "angstrom", "stress": "GPa", "temperature": "K"}
    out["temperature"] = network.temperature_k
    out["applied_stress"] = network.applied_stress_gpa.tolist()
    out["cell"] = None if network.cell_angstrom is None else network.cell_angstrom.tolist()
    out["positions"] = network.positions_angstrom.tolist()
    out["segments"] = network.segments.tolist()
    out["burgers"] = network.burgers_angstrom.tolist()
    out["normals"] = network.normals.tolist()
    if network.node_flags is not None:
        out["surface_nodes"] = np.flatnonzero(network.node_flags & NODE_SURFACE).tolist()
        out["pinned_nodes"] = np.flatnonzero(network.node_flags & NODE_PINNED).tolist()
    if network.has_quadrature_stress:
        out["quadrature"] = {"positions": network.quad_positions_angstrom.tolist(),
                             "segment": network.quad_segments.tolist(),
                             "stress": network.quad_stress_gpa.tolist()}
    return out


def dumps_network(data: dict[str, Any]) -> str:
    """JSON text of a network object: one node, segment or 3x3 tensor per line, floats exact (repr)."""
    return _dumps(data, 0, nested_in_list=False) + "\n"


def _dumps(value: Any, indent: int, nested_in_list: bool) -> str:
    pad, inner = " " * indent, " " * (indent + 2)
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f"{inner}{json.dumps(k)}: {_dumps(v, indent + 2, False)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, list) and value and isinstance(value[0], list) and not nested_in_list:
        rows = [inner + _dumps(v, indent + 2, True) for v in value]
        return "[\n" + ",\n".join(rows) + "\n" + pad + "]"
    return json.dumps(value, allow_nan=False)


def write_network(network: DislocationNetwork, path: str | Path, comment: str | None = None) -> bool:
    """Write ``network`` as a JSON network file in internal units (angstrom, GPa, K), atomically.

    Returns True when the file changed (identical content leaves it untouched).
    """
    return write_bytes(path, dumps_network(network_to_dict(network, comment)).encode())
