"""Slurm jobs of a batch's Parsl blocks: their states (for a failure's reason) and their cancellation.

Every command reads the cluster from ``SLURM_CONF`` (or Slurm's default). Job states come from ``sacct`` (the
accounting database) and, on a cluster without one, from the job completion log (``sacct -c``, as on the
one-node test cluster), then from ``squeue`` for jobs still queued or running.
"""

from __future__ import annotations

import os
import subprocess

TIMEOUT_S = 30


def _env(slurm_conf: str | None) -> dict[str, str]:
    return {**os.environ, **({"SLURM_CONF": slurm_conf} if slurm_conf else {})}


def _run(args: list[str], slurm_conf: str | None) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(args, capture_output=True, text=True, env=_env(slurm_conf), timeout=TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        return None


def job_states(jobs: list[str], slurm_conf: str | None = None) -> dict[str, str]:
    """State of each of ``jobs`` (e.g. ``CANCELLED``, ``TIMEOUT``, ``NODE_FAIL``, ``RUNNING``); jobs Slurm does not
    know are left out."""
    if not jobs:
        return {}
    wanted = set(jobs)
    out: dict[str, str] = {}
    for args in (["sacct", "-X", "-n", "-P", "-o", "JobID,State"], ["sacct", "-c", "-n", "-P", "-o", "JobID,State"]):
        r = _run([*args, "-j", ",".join(jobs)], slurm_conf)
        if r is not None and r.returncode == 0:
            for line in r.stdout.splitlines():
                parts = line.split("|")
                if len(parts) >= 2 and parts[0] in wanted:
                    out[parts[0]] = parts[1].split()[0]
            if out:
                return out
    r = _run(["squeue", "-h", "-o", "%i|%T", "-j", ",".join(jobs)], slurm_conf)
    if r is not None and r.returncode == 0:
        for line in r.stdout.splitlines():
            jid, _, state = line.partition("|")
            if jid in wanted:
                out[jid] = state
    return out


def cancel_slurm_jobs(jobs: list[str], slurm_conf: str | None) -> list[str]:
    """``scancel`` the Slurm jobs ``jobs`` that are still queued or running; returns them as "slurm job <id>"."""
    if not jobs:
        return []
    r = _run(["squeue", "-h", "-o", "%i", "-j", ",".join(jobs)], slurm_conf)
    alive = [j for j in (r.stdout.split() if r is not None else []) if j in set(jobs)]
    if alive:
        _run(["scancel", *alive], slurm_conf)
    return [f"slurm job {j}" for j in alive]
