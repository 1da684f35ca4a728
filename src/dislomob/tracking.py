"""MLflow tracking setup shared by the stages: the store, run ownership, and runs that a dead process left.

A run carries its owner's pid, host and the pid's start time as tags; a stage that starts marks KILLED
the RUNNING runs of its experiment whose owner on this host is gone (a ``kill -9``, a machine reset).
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path


def tracking_setup(uri: str, experiment: str) -> str:
    """Point MLflow at ``uri`` (for sqlite, artifacts in an ``artifacts`` folder beside the DB) and make
    ``experiment`` the active one; return its id."""
    import mlflow

    artifacts = None
    if uri.startswith("sqlite:///"):
        db = Path(uri[len("sqlite:///"):])
        db.parent.mkdir(parents=True, exist_ok=True)
        artifacts = (db.parent / "artifacts").resolve().as_uri()
    mlflow.set_tracking_uri(uri)
    if mlflow.get_experiment_by_name(experiment) is None:
        mlflow.create_experiment(experiment, artifact_location=artifacts)
    return mlflow.set_experiment(experiment).experiment_id


def interrupted(exc: BaseException) -> bool:
    """True for Ctrl-C / SIGTERM: a KeyboardInterrupt, or the SystemExit Lightning raises while handling one
    (its Trainer turns an interrupt into ``sys.exit(1)``)."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, KeyboardInterrupt):
            return True
        if not isinstance(exc, SystemExit):
            return False
        exc, seen = exc.__context__, seen + 1
    return False


@contextmanager
def ended_on_exit(run):
    """End ``run`` FINISHED, KILLED (Ctrl-C, SIGTERM) or FAILED (an error) when the block exits."""
    import mlflow

    try:
        yield run
    except BaseException as exc:
        mlflow.end_run("KILLED" if interrupted(exc) else "FAILED")
        raise
    mlflow.end_run()


def _process_start(pid: int) -> str | None:
    """Start time of a process (clock ticks since boot, /proc) to tell a live owner from a reused PID."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return None if fields[0] == "Z" else fields[19]  # state 'Z': exited, not yet reaped


def owner_tags() -> dict[str, str]:
    """Tags that name the process owning a run: pid, host and the pid's start time (a reused pid differs)."""
    import os
    import socket

    return {"dislomob.pid": str(os.getpid()), "dislomob.host": socket.gethostname(),
            "dislomob.pid_start": _process_start(os.getpid()) or ""}


def owner_alive(tags: dict[str, str]) -> bool:
    """Whether the process named by :func:`owner_tags` still runs (on this host)."""
    import os

    pid = int(tags["dislomob.pid"])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    start = _process_start(pid)
    if Path("/proc/self/stat").exists() and start is None:
        return False  # a zombie: the owner exited
    return not tags.get("dislomob.pid_start") or start is None or start == tags["dislomob.pid_start"]


def end_orphaned_runs(experiment_id: str) -> list[str]:
    """Mark KILLED the runs of ``experiment_id`` left RUNNING by a process of this host that is gone
    (killed with -9, machine reset); runs of other hosts or without owner tags are left alone."""
    import socket
    import sys

    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    ended = []
    for run in client.search_runs([experiment_id], filter_string="attributes.status = 'RUNNING'", max_results=1000):
        tags = run.data.tags
        if "dislomob.pid" not in tags or tags.get("dislomob.host") != socket.gethostname() or owner_alive(tags):
            continue
        client.set_terminated(run.info.run_id, status="KILLED")
        ended.append(run.info.run_id)
        print(f"dislomob: MLflow run {run.info.run_id} was left RUNNING by process {tags['dislomob.pid']} "
              "(gone): marked KILLED", file=sys.stderr)
    return ended


