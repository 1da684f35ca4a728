"""One MD trajectory: build, minimize, equilibrate at T, load with the resolved shear stress, DXA on the fly.

A dipole is minimized and equilibrated at zero stress, then loaded by an affine elastic pre-strain
plus NPT. A shear loop would shrink under its line tension, so (as in the paper) the box is
pre-strained by the applied stress before a short minimization and the load acts from the start.

Inputs are physical (K, GPa, degrees); the result is a trajectory file whose name is the run's
content hash, so asking for the same run twice costs nothing. What the cache holds for a run is
read by ``cached_run`` and ``should_run`` decides whether to run it again: a finished run (``ok``
or ``cut``) never, unless it is ``stale`` (recorded before the MD recorded the crystal's position,
``dislomob.md.crystal_frame``, and not corrected since); a ``transient`` failure or an unreadable file on every request; a ``physics``
failure only with ``retry_failed`` (the policy is in ``dislomob.md.dataset``).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Literal

import numpy as np

from dislomob.config import MaterialConfig, MDConfig
from dislomob.md.build import Configuration, build_dipole, build_loop
from dislomob.md.crystal import nearest_orientation
from dislomob.md.crystal_frame import DisplacementTracker, displacement_profile, n_bins_for
from dislomob.md.dxa import run_dxa, submit_dxa
from dislomob.md.potential import resolve_potential
from dislomob.md.trajectory import Event, Frame, Trajectory, TrajectoryMeta, read_meta, write_trajectory

ATOMIC_MASS = {"Fe": 55.845}
EXPECTED_LINES = {"dipole": 2, "loop": 1}


class MDFailure(Exception):
    """A run that failed somewhere else (an MD on several ranks, ``dislomob.md.mpi_run``), with its class and reason."""

    def __init__(self, failure_class: Literal["physics", "transient"], reason: str) -> None:
        super().__init__(reason)
        self.failure_class, self.reason = failure_class, reason


def failure_of(exc: BaseException) -> tuple[Literal["physics", "transient"], str]:
    """Failure class and reason of a run that raised ``exc``.

    Out of memory depends on what else ran on the machine; everything else (LAMMPS errors, lost atoms,
    runaway temperature, DXA line counts, bad geometry) repeats with the same inputs.
    """
    if isinstance(exc, MDFailure):
        return exc.failure_class, exc.reason
    return ("transient" if isinstance(exc, MemoryError) else "physics"), f"{type(exc).__name__}: {exc}".strip()


@dataclass(frozen=True)
class RunSpec:
    """Physical parameters of one run: temperature K, resolved shear stress GPa, character angle deg."""

    temperature_k: float
    stress_gpa: float
    angle_deg: float
    geometry: str = "dipole"
    seed: int = 1234

    def __post_init__(self) -> None:
        if not (self.temperature_k > 0) or math.isnan(self.temperature_k):
            raise ValueError(f"temperature_k={self.temperature_k} not allowed: must be > 0 K")
        if not (0 <= self.angle_deg <= 180):
            raise ValueError(f"angle_deg={self.angle_deg} not allowed: 0 <= angle_deg <= 180")
        if not (abs(self.stress_gpa) <= 5) or math.isnan(self.stress_gpa):
            raise ValueError(f"stress_gpa={self.stress_gpa} not allowed: |stress| <= 5 GPa")
        if self.geometry not in EXPECTED_LINES:
            raise ValueError(f"geometry={self.geometry!r} not allowed: one of {sorted(EXPECTED_LINES)}")


def run_key(spec: RunSpec, md: MDConfig, material: MaterialConfig) -> str:
    """Content hash of everything that determines a trajectory (physics + MD settings), 16 hex chars."""
    o = nearest_orientation(spec.angle_deg)
    payload = {
        "spec": {**asdict(spec), "angle_deg": round(o.angle_deg, 4)},
        # how a run is executed (threads, MPI ranks, .ca files) is not what it is: keys of runs on 1 rank unchanged
        "md": md.model_dump(exclude={"threads", "ranks", "write_ca"}),
        "material": material.model_dump(),
        # loops: 2 (build_loop fixed on 2026-11-27: loops in thin cells split, the cell lacked the plastic shear)
        "version": 2 if spec.geometry == "loop" else 1,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def applied_stress_tensor(b_box: np.ndarray, stress_gpa: float) -> np.ndarray:
    """Stress tensor (GPa, box frame) whose resolved shear on the (z-normal) glide plane along b is ``stress_gpa``."""
    bh = b_box / np.linalg.norm(b_box)
    n = np.array([0.0, 0.0, 1.0])
    return stress_gpa * (np.outer(bh, n) + np.outer(n, bh))


def package_versions() -> dict[str, str]:
    """Versions of the packages that shape a trajectory."""
    out = {}
    for name in ("dislomob", "lammps", "ovito", "numpy"):
        try:
            out[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            out[name] = "unknown"
    return out


def build_configuration(spec: RunSpec, md: MDConfig, material: MaterialConfig) -> Configuration:
    """The initial atomistic configuration of ``spec`` (dipole or loop)."""
    o = nearest_orientation(spec.angle_deg)
    a = material.lattice_a_angstrom
    if spec.geometry == "dipole":
        tgt = (md.box.glide_nm * 10, md.box.line_nm * 10, md.box.height_nm * 10)
        return build_dipole(o, a, tgt, material.shear_modulus_gpa, material.poisson_ratio)
    tgt = (md.loop.glide_nm * 10, md.loop.line_nm * 10, md.loop.height_nm * 10)
    return build_loop(o, a, tgt, md.loop.radius_nm * 10)


def _base_meta(spec: RunSpec, md: MDConfig, material: MaterialConfig, key: str, conf: Configuration | None) -> TrajectoryMeta:
    o = nearest_orientation(spec.angle_deg)
    rot = o.rotation() if conf is None else conf.crystal_to_box()
    b_box = rot @ (np.array([0.5, 0.5, -0.5]) * material.lattice_a_angstrom)
    return TrajectoryMeta(
        key=key,
        geometry=spec.geometry,
        temperature_k=spec.temperature_k,
        stress_gpa=spec.stress_gpa,
        stress_tensor_gpa=applied_stress_tensor(b_box, spec.stress_gpa).tolist(),
        angle_deg=o.angle_deg,
        requested_angle_deg=spec.angle_deg,
        line_direction=list(o.line),
        glide_direction=list(o.glide),
        plane_normal=list(o.normal),
        burgers=[0.5, 0.5, -0.5],
        rotation=rot.tolist(),
        n_atoms=0 if conf is None else len(conf.positions),
        potential=material.potential,
        seed=spec.seed,
        timestep_fs=md.timestep_fs,
        settle_ps=md.settle_ps,
        duration_ps=md.duration_ps,
        sample_every_ps=md.sample_every_ps,
        passing_stress_gpa=None if conf is None else conf.passing_stress_gpa,
        box_angstrom=[] if conf is None else [float(v) for v in conf.lengths],
        versions=package_versions(),
    )


CacheState = Literal["absent", "done", "failed_physics", "failed_transient", "unreadable", "stale"]
STALE_REASON = "recorded without the crystal's position (dislomob.md.crystal_frame): its line speeds are lab-frame"


@dataclass(frozen=True)
class CachedRun:
    """What the cache holds at ``path``: its state, the failure reason (or why it cannot be read), attempts so far."""

    path: Path
    state: CacheState
    reason: str = ""
    attempts: int = 0


def failure_class(meta: TrajectoryMeta) -> str | None:
    """``physics`` or ``transient`` for a failed run (files written before the class was recorded: by the reason)."""
    if meta.status != "failed":
        return None
    if meta.failure_class:
        return meta.failure_class
    return "transient" if (meta.failure_reason or "").startswith("worker:") else "physics"


def cached_run(path: str | Path) -> CachedRun:
    """Read what the cache holds at ``path``; a file that cannot be read is ``unreadable`` (with why), never an error."""
    path = Path(path)
    if not path.exists():
        return CachedRun(path, "absent")
    try:
        meta = read_meta(path)
    except Exception as exc:  # truncated, junk, or metadata this version cannot validate
        why = " ".join(f"{type(exc).__name__}: {exc}".split())
        return CachedRun(path, "unreadable", why[:300])
    if meta.status != "failed":
        if meta.lattice_reference is None:
            return CachedRun(path, "stale", STALE_REASON, meta.attempts)
        return CachedRun(path, "done", "", meta.attempts)
    return CachedRun(path, f"failed_{failure_class(meta)}", meta.failure_reason or "", meta.attempts)


def should_run(cached: CachedRun, retry_failed: bool = False) -> bool:
    """Whether a request for this run must run it: absent, unreadable, stale, transient failure; physics failure if asked."""
    if cached.state == "failed_physics":
        return retry_failed
    return cached.state != "done"


def simulate(
    spec: RunSpec,
    md: MDConfig,
    material: MaterialConfig,
    out_dir: str | Path,
    progress: bool = False,
    force: bool = False,
    retry_failed: bool = False,
) -> Path:
    """Run (or reuse from the cache) one trajectory into ``out_dir/<key>.h5``; a failure is recorded, not raised.

    The cache is reused per ``should_run``; ``force`` reruns whatever it holds. A rerun of a failed
    or unreadable file records the earlier failure as a ``retry`` event and counts the attempt.
    """
    key = run_key(spec, md, material)
    out = Path(out_dir) / f"{key}.h5"
    prev = cached_run(out)
    if not force and not should_run(prev, retry_failed):
        return out
    t0 = time.perf_counter()
    conf = None
    frames: list[Frame] = []
    history = {"attempts": prev.attempts + 1, "events": []}
    if prev.state in ("failed_physics", "failed_transient", "unreadable", "stale"):
        history["events"] = [Event(kind="retry", detail=f"attempt {prev.attempts + 1}; before: {prev.state}: {prev.reason}")]
    meta = _base_meta(spec, md, material, key, None).model_copy(update=history, deep=True)
    try:
        conf = build_configuration(spec, md, material)
        meta = _base_meta(spec, md, material, key, conf).model_copy(update=history, deep=True)
        if md.ranks > 1:
            from dislomob.md.mpi_run import run_md_on_ranks

            frames, stress_samples = run_md_on_ranks(spec, md, material, conf, meta, out_dir, progress)
        else:
            frames, stress_samples = _run_md(spec, md, material, conf, meta, out_dir, progress)
        if stress_samples:
            b_ref = np.array(meta.rotation) @ np.array(meta.burgers)
            bh = b_ref / np.linalg.norm(b_ref)
            resolved = [float(bh @ s @ np.array([0.0, 0.0, 1.0])) for s in stress_samples]
            meta.measured_stress_gpa = float(np.mean(resolved))
            meta.measured_stress_tensor_gpa = np.mean(stress_samples, axis=0).tolist()
    except Exception as exc:  # every failure of a run is recorded in its trajectory, never lost
        meta.status = "failed"
        meta.failure_class, meta.failure_reason = failure_of(exc)
        meta.events.append(Event(kind="failed", detail=f"{meta.failure_class}: {meta.failure_reason}"))
    meta.wall_time_s = time.perf_counter() - t0
    write_trajectory(out, Trajectory(meta, frames))
    return out


def _run_md(spec: RunSpec, md: MDConfig, material: MaterialConfig, conf: Configuration, meta: TrajectoryMeta,
            out_dir: str | Path, progress: bool, abort=None) -> tuple[list[Frame], list[np.ndarray]]:
    """LAMMPS run with DXA frames; DXA of frame i runs in a worker thread while MD advances to frame i+1.

    On several MPI ranks every rank runs this (SPMD): LAMMPS commands and the collective calls (thermo
    values, gathering the positions) on all of them; DXA, the crystal's displacement and the frames on
    rank 0 only, which alone returns frames and stress samples, and tells the others when a line-count
    event ends the run. ``abort(exc)`` (ranks > 1) is called on an exception before LAMMPS closes, whose
    teardown is collective and would wait forever for ranks that are still running.
    """
    from tqdm import tqdm

    from dislomob.md import lmp as L

    potential = resolve_potential(material.potential)
    lmp = L.open_lammps(md.threads)
    root = L.world_rank(lmp) == 0
    pending = None
    try:
        L.setup_system(lmp, conf.positions, conf.cell, potential, material.element, ATOMIC_MASS.get(material.element, 55.845))
        steps_per_sample = max(1, round(md.sample_every_ps * 1000.0 / md.timestep_fs))
        lmp.command(f"timestep {md.timestep_fs / 1000.0!r}")
        lmp.command(f"thermo {steps_per_sample}")
        stress = np.array(meta.stress_tensor_gpa)
        loop = spec.geometry == "loop"
        if loop:
            L.apply_elastic_strain(lmp, stress, material.shear_modulus_gpa, material.poisson_ratio)
        min_steps = md.loop.minimize_steps if loop else md.minimize_steps
        if min_steps:
            L.minimize(lmp, min_steps)
            lmp.command("reset_timestep 0")
        cell, origin = L.cell_of(lmp)
        atoms = L.positions_of(lmp)
        expected = EXPECTED_LINES[spec.geometry]
        lines = run_dxa(atoms, cell, origin) if root else [None] * expected
        if len(lines) != expected:
            raise RuntimeError(f"DXA found {len(lines)} lines after minimization, expected {expected} for a {spec.geometry}")
        lmp.command(f"velocity all create {2 * float(spec.temperature_k)!r} {spec.seed} mom yes rot no dist gaussian")
        n_eq = 0 if loop else round(md.equilibrate_ps * 1000.0 / md.timestep_fs)
        if n_eq:
            lmp.command(L.npt_fix(spec.temperature_k, np.zeros((3, 3)), md.temperature_damping_ps, md.pressure_damping_ps))
            _run_checked(lmp, n_eq, spec.temperature_k, setup=True)
            lmp.command("unfix md")
        if not loop:
            L.apply_elastic_strain(lmp, stress, material.shear_modulus_gpa, material.poisson_ratio)
        lmp.command(L.npt_fix(spec.temperature_k, stress, md.temperature_damping_ps, md.pressure_damping_ps))
        n_settle = round(md.settle_ps * 1000.0 / md.timestep_fs)
        if n_settle:
            # under load, unrecorded: the lines accelerate from rest to their steady glide speed
            _run_checked(lmp, n_settle, spec.temperature_k, setup=True)
        n_samples = round(md.duration_ps / md.sample_every_ps)
        ca_dir = Path(out_dir) / f"{meta.key}_ca" if md.write_ca and root else None
        if ca_dir is not None:
            ca_dir.mkdir(parents=True, exist_ok=True)
        frames: list[Frame] = []
        stress_samples: list[np.ndarray] = []
        desc = f"MD {spec.geometry} T={spec.temperature_k:g}K s={spec.stress_gpa:g}GPa a={meta.angle_deg:.1f}"
        bar = tqdm(total=n_samples + 1, desc=desc, disable=not (progress and root), unit="frame")
        t_prod = time.perf_counter()
        tracker = None
        meta.lattice_reference = "measured"
        for i in range(n_samples + 1):
            if i:
                _run_checked(lmp, steps_per_sample, spec.temperature_k, setup=i == 1 and not n_settle)
                stress = L.stress_gpa_of(lmp)
                if root:
                    stress_samples.append(stress)
            cut = root and pending is not None and not _collect(pending, frames, meta, expected, bar)
            if L.bcast_flag(lmp, cut):
                pending = None
                break
            cell, origin = L.cell_of(lmp)
            atoms = L.positions_of(lmp)
            if not root:
                continue
            ca = ca_dir / f"frame_{i:05d}.ca" if ca_dir is not None else None
            last = frames[-1].lines if frames else lines
            if tracker is None:
                tracker, n_bins = DisplacementTracker(atoms, cell, origin), n_bins_for(cell[2, 2])
            profile = displacement_profile(tracker.update(atoms, cell), tracker.heights, n_bins)
            pos = dxa_window(atoms, cell, [ln.points[:, 2].mean() for ln in last], md.dxa_window_nm * 10)
            fut = submit_dxa(pos, cell, origin, ca)
            if not md.dxa_overlap:
                fut.result()
            pending = ((n_settle + i * steps_per_sample) * md.timestep_fs / 1000.0, cell, origin, fut, profile)
        if pending is not None:
            _collect(pending, frames, meta, expected, bar)
        meta.production_wall_s = time.perf_counter() - t_prod
        bar.close()
        return frames, stress_samples
    except Exception as exc:
        if abort is not None:
            abort(exc)
        raise
    finally:
        if pending is not None:
            pending[3].result()
        lmp.close()


def dxa_window(positions: np.ndarray, cell: np.ndarray, plane_z: list[float], half_width_angstrom: float) -> np.ndarray:
    """Atoms within ``half_width_angstrom`` of the glide planes (z, minimum image) the lines sat on at the last frame.

    DXA's cost scales with the atoms it sees; lines glide within their planes, so slabs around the
    planes of the previous frame find the same lines at a fraction of the cost. Width 0: every atom.
    """
    if half_width_angstrom <= 0 or not plane_z:
        return positions
    lz = cell[2, 2]
    keep = np.zeros(len(positions), dtype=bool)
    for z0 in plane_z:
        dz = positions[:, 2] - z0
        keep |= np.abs(dz - lz * np.round(dz / lz)) < half_width_angstrom
    return positions[keep]


def _collect(pending, frames: list[Frame], meta: TrajectoryMeta, expected: int, bar) -> bool:
    """Append a DXA frame; on a line-count event cut the trajectory there and return False."""
    t_ps, cell, origin, fut, profile = pending
    lines = fut.result()
    bar.update(1)
    event = line_count_event(len(lines), expected, t_ps)
    if event is not None:
        meta.status = "cut"
        meta.events.append(event)
        return False
    frames.append(Frame(t_ps, cell, origin, lines, profile))
    return True


def line_count_event(n_lines: int, expected: int, time_ps: float) -> Event | None:
    """The event that cuts a trajectory when DXA finds no line or a changed line count at ``time_ps``."""
    if n_lines == expected:
        return None
    kind = "no_lines" if n_lines == 0 else "line_count_change"
    return Event(kind=kind, time_ps=time_ps, detail=f"DXA found {n_lines} lines, expected {expected}; trajectory cut here")


def _run_checked(lmp, steps: int, temperature_k: float, setup: bool = False) -> None:
    """Run ``steps`` MD steps (``setup`` after fixes or the box changed); raise on LAMMPS errors or runaway T."""
    lmp.command(f"run {steps} pre {'yes' if setup else 'no'} post no")
    temp = lmp.get_thermo("temp")
    if not math.isfinite(temp) or temp > 10 * temperature_k + 2000:
        raise RuntimeError(f"temperature blew up to {temp:.3g} K (target {temperature_k} K): timestep too large?")
