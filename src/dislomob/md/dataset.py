"""The `simulate` stage: the initial grid of MD runs from params, run through Parsl, indexed in JSON.

Failure policy
--------------
Every run of the grid ends as a trajectory file named by its content key, with a status: ``ok``,
``cut`` (DXA saw the line count change; the frames before it are kept) or ``failed``, with
``failure_class`` and ``failure_reason`` (and ``attempts``) in its metadata. ``index.json`` counts
them (``n_ok``, ``n_cut``, ``n_failed``, ``n_failed_physics``, ``n_failed_transient``) and lists
every failed run under ``failures``; the stage prints the same as a summary.

Two classes of failure, and when they run again:

- ``transient``: the Parsl worker running it died, was killed or lost, the task timed out, the
  run ran out of memory; also a cached file that cannot be read (truncated, junk, unknown
  metadata: named in a warning), and a run cut short by killing the stage (it leaves no file).
  Nothing about the inputs is wrong, so the next request runs it again, automatically.
- ``physics``: LAMMPS stopped (lost atoms, any LAMMPS error), the temperature ran away, DXA did
  not find the expected lines after minimization, the geometry could not be built. The same
  inputs fail the same way, so the failure is kept as a result and is not rerun;
  ``dislomob simulate --retry-failed`` reruns physics failures (after a code change that does not
  change the run key, say); ``--force`` (single runs) reruns anything.

Exit status of ``dislomob simulate`` (what ``dvc repro`` sees), decided by the state of the dataset
after the call, not by what happened during it, so a rerun that changes nothing gives the same:

- 0: every run is ``ok``, ``cut`` or a recorded physics failure, and at least one is usable.
  ``featurize`` goes on with the usable runs; the physics failures are named in the summary.
- 1: a transient failure is left (run the same command again: only those runs run), or no run
  is usable. ``dvc repro`` stops before ``featurize``; ``data/md`` is ``persist: true``, so the
  runs that finished are kept and not rerun.
- 2: bad input (params, output folder), reported before any MD.
- 128 + N when killed by signal N (SIGTERM: 143, SIGINT: 130): the stage ends its Parsl
  interchange and workers first (``dislomob.md.procs``); finished runs are kept, the others run on
  the next request; after SIGKILL the next start ends what the killed stage left.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from dislomob.atomic import write_json
from dislomob.config import Config
from dislomob.md.analysis import summarize
from dislomob.md.dispatch import BatchResult, run_batch
from dislomob.md.run import RunSpec, cached_run, failure_class
from dislomob.md.trajectory import read_trajectory

EXIT_OK, EXIT_INCOMPLETE = 0, 1


def initial_specs(cfg: Config) -> list[RunSpec]:
    """Every (T, stress, angle) of the dataset grid, angles snapped to available characters, seeded."""
    d = cfg.dataset
    specs = []
    for i, (t, s, a) in enumerate(itertools.product(d.temperatures_k, d.stresses_gpa, d.angles_deg)):
        specs.append(RunSpec(temperature_k=t, stress_gpa=s, angle_deg=a, geometry=cfg.md.geometry, seed=cfg.seed + i))
    return specs


def simulate_dataset(cfg: Config, out_dir: str | Path, progress: bool = True, retry_failed: bool = False) -> dict:
    """Run the initial dataset into ``out_dir`` and write ``out_dir/index.json``; returns the index.

    ``index["batch"]`` (not written to the file) holds the BatchResult of this call.
    """
    out_dir = Path(out_dir)
    specs = initial_specs(cfg)
    batch = run_batch(specs, cfg, out_dir, progress=progress, retry_failed=retry_failed)
    runs = [_index_entry(spec, path) for spec, path in zip(specs, batch)]
    failures = [
        {k: r[k] for k in ("file", "failure_class", "failure_reason", "attempts", "temperature_k", "stress_gpa", "angle_deg")}
        for r in runs if r["status"] == "failed"
    ]
    index = {
        "profile": cfg.profile,
        "n_runs": len(runs),
        "n_ok": sum(r["status"] == "ok" for r in runs),
        "n_cut": sum(r["status"] == "cut" for r in runs),
        "n_failed": len(failures),
        "n_failed_physics": sum(f["failure_class"] == "physics" for f in failures),
        "n_failed_transient": sum(f["failure_class"] == "transient" for f in failures),
        "failures": failures,
        "runs": runs,
    }
    index["exit_status"] = exit_status(index)
    write_json(out_dir / "index.json", index)
    index["batch"] = batch
    return index


def _index_entry(spec: RunSpec, path: Path) -> dict:
    """One run's line of index.json; a file that cannot be read is a transient failure named by its reason."""
    base = {"file": path.name, "key": path.stem, "requested_angle_deg": spec.angle_deg}
    try:
        traj = read_trajectory(path)
    except Exception as exc:
        c = cached_run(path)
        return {**base, "status": "failed", "failure_class": "transient", "attempts": c.attempts,
                "failure_reason": f"unreadable: {c.reason or exc}", "temperature_k": spec.temperature_k,
                "stress_gpa": spec.stress_gpa, "angle_deg": spec.angle_deg, "n_frames": 0}
    m = traj.meta
    return {
        **base,
        "key": m.key,
        "status": m.status,
        "failure_class": failure_class(m),
        "failure_reason": m.failure_reason,
        "attempts": m.attempts,
        "temperature_k": m.temperature_k,
        "stress_gpa": m.stress_gpa,
        "angle_deg": m.angle_deg,
        "n_frames": len(traj.frames),
        "n_atoms": m.n_atoms,
        "passing_stress_gpa": m.passing_stress_gpa,
        "measured_stress_gpa": m.measured_stress_gpa,
        "wall_time_s": m.wall_time_s,
        "velocities_m_s": [ln.velocity_m_s for ln in summarize(traj, skip_ps=min(1.0, m.duration_ps / 4))]
        if traj.frames else [],
    }


def exit_status(index: dict) -> int:
    """The stage's exit status for this index (module docstring): 1 if a transient failure is left or nothing is usable."""
    if index["n_failed_transient"] or index["n_ok"] + index["n_cut"] == 0:
        return EXIT_INCOMPLETE
    return EXIT_OK


def summary_lines(index: dict, out_dir: str | Path) -> list[str]:
    """The stage's summary: counts, what this call ran, every failure by file, and what the exit status means."""
    batch: BatchResult | None = index.get("batch")
    did = f" [{len(batch.ran)} run now, {len(batch.reused)} from the cache]" if batch is not None else ""
    lines = [
        f"simulate: {index['n_ok']} ok, {index['n_cut']} cut, {index['n_failed']} failed "
        f"({index['n_failed_physics']} physics, {index['n_failed_transient']} transient) of {index['n_runs']} runs{did}"
    ]
    for f in index["failures"]:
        reason = " ".join(str(f["failure_reason"]).split())[:200]
        lines.append(f"  failed ({f['failure_class']}, attempt {f['attempts']}): {Path(out_dir) / f['file']} "
                     f"T={f['temperature_k']:g} K, {f['stress_gpa']:g} GPa, {f['angle_deg']:.1f} deg: {reason}")
    index_path = Path(out_dir) / "index.json"
    if index["n_failed_transient"]:
        lines.append(f"simulate: exit 1: {index['n_failed_transient']} transient failure(s): run the same command again "
                     f"to retry only those (listed in {index_path})")
    elif index["n_ok"] + index["n_cut"] == 0:
        lines.append(f"simulate: exit 1: no usable run (listed in {index_path})")
    elif index["n_failed_physics"]:
        lines.append(f"simulate: exit 0: {index['n_failed_physics']} physics failure(s) kept as results and not rerun "
                     f"(--retry-failed reruns them); the other runs are complete (listed in {index_path})")
    else:
        lines.append("simulate: exit 0: every run complete")
    return lines
