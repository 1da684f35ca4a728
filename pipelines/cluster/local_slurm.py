"""A one-node Slurm cluster on this machine, from Debian's packages, for the Slurm tests and the cluster profile.

Everything lives in one folder: a munge key made on the spot, ``munged`` on its own socket, ``slurm.conf``,
``slurmctld`` and ``slurmd`` with their state, spool, logs and pid files. Job completions go to a text file
(``JobCompType=jobcomp/filetxt``), so ``sacct -c`` lists the jobs without a database.

Traffic stays on loopback: the node and the controller are named ``localhost`` and
``CommunicationParameters=NoInAddrAny`` makes slurmd (and srun) bind to the address that name resolves to,
127.0.0.1, instead of every interface (checked with :func:`listening_addresses`); munged listens on a Unix
socket only. slurmctld ignores NoInAddrAny (slurm.conf(5): "for all daemons/clients except for the slurmctld")
and listens on every address, so :func:`start` first drops packets to its port that arrive on any interface but
loopback (iptables and ip6tables rules tagged with the cluster's folder, removed by :func:`stop`). Without root
or iptables the controller's port stays reachable from the network, and :func:`start` says so. (A private
network namespace would isolate everything, but then every client, Parsl's interchange included, must run
inside it too.) The daemons run as the user
who starts them (root in CI); with ``ProctrackType=proctrack/linuxproc`` and ``TaskPlugin=task/none`` no
cgroups are needed.

Usage (a shell for `dvc repro` on ``pipelines/cluster/params.yaml``)::

    python pipelines/cluster/local_slurm.py start /tmp/dislomob-slurm    # prints: export SLURM_CONF=...
    python pipelines/cluster/local_slurm.py stop /tmp/dislomob-slurm

Needs ``apt-get install slurmd slurmctld munge slurm-client`` (``.ci/run`` does it).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
NODE = "localhost"
PARTITION = "debug"


@dataclass(frozen=True)
class LocalSlurm:
    """A started cluster: its folder, ``slurm.conf`` and the environment its clients need (``SLURM_CONF``)."""

    root: Path
    conf: Path
    cpus: int

    @property
    def env(self) -> dict[str, str]:
        """The calling environment plus ``SLURM_CONF`` (every Slurm command and Parsl's provider read it)."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}


def missing_commands() -> list[str]:
    """The Slurm and munge programs this machine lacks (empty when a cluster can start)."""
    need = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sacct", "scontrol", "srun")
    return [c for c in need if shutil.which(c) is None and not Path(f"/usr/sbin/{c}").exists()]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _exe(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


def slurm_conf(root: Path, cpus: int, ctld_port: int, slurmd_port: int) -> str:
    """The ``slurm.conf`` text of a one-node cluster in ``root`` (module docstring)."""
    user = os.environ.get("USER") or "root"
    return "\n".join([
        "ClusterName=dislomob",
        f"SlurmctldHost={NODE}",
        f"SlurmctldPort={ctld_port}",
        f"SlurmdPort={slurmd_port}",
        f"SlurmUser={user}",
        f"SlurmdUser={user}",
        f"AuthInfo=socket={root / 'munge' / 'munge.socket'}",
        "CommunicationParameters=NoInAddrAny",
        f"StateSaveLocation={root / 'state'}",
        f"SlurmdSpoolDir={root / 'spool'}",
        f"SlurmctldPidFile={root / 'slurmctld.pid'}",
        f"SlurmdPidFile={root / 'slurmd.pid'}",
        f"SlurmctldLogFile={root / 'slurmctld.log'}",
        f"SlurmdLogFile={root / 'slurmd.log'}",
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core",
        "MpiDefault=none",
        "ReturnToService=2",
        "SchedulerType=sched/builtin",
        "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none",
        "JobCompType=jobcomp/filetxt",
        f"JobCompLoc={root / 'jobcomp.txt'}",
        "SlurmctldTimeout=30",
        "SlurmdTimeout=30",
        "InactiveLimit=0",
        "MinJobAge=30",
        "KillWait=5",
        "Waittime=0",
        "SlurmctldParameters=enable_configless",
        f"NodeName={NODE} NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN",
        f"PartitionName={PARTITION} Nodes={NODE} Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO",
        "",
    ])


def start(root: str | Path, cpus: int | None = None, timeout_s: float = 30.0) -> LocalSlurm:
    """Start munged, slurmctld and slurmd in ``root`` (made if absent) and wait until the node is idle."""
    missing = missing_commands()
    if missing:
        raise RuntimeError(f"Slurm not installed (missing {', '.join(missing)}): "
                           "apt-get install slurmd slurmctld munge slurm-client")
    root = Path(root).resolve()
    stop(root)
    for sub in ("munge", "state", "spool"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    os.chmod(root / "munge", 0o700)
    key = root / "munge" / "munge.key"
    if not key.exists():
        key.write_bytes(os.urandom(1024))
        os.chmod(key, 0o400)
    cpus = int(cpus or os.cpu_count() or 1)
    conf = root / "slurm.conf"
    ctld_port = _free_port()
    conf.write_text(slurm_conf(root, cpus, ctld_port, _free_port()))
    cluster = LocalSlurm(root, conf, cpus)
    guard_port(root, ctld_port)
    subprocess.run([_exe("munged"), "--force", f"--key-file={key}", f"--socket={root / 'munge' / 'munge.socket'}",
                    f"--pid-file={root / 'munge' / 'munged.pid'}", f"--log-file={root / 'munge' / 'munged.log'}",
                    f"--seed-file={root / 'munge' / 'munged.seed'}"], check=True, env=cluster.env)
    subprocess.run([_exe("slurmctld"), "-c", "-f", str(conf)], check=True, env=cluster.env)
    subprocess.run([_exe("slurmd"), "-N", NODE, "-f", str(conf)], check=True, env=cluster.env)
    try:
        wait_idle(cluster, timeout_s)
    except RuntimeError:
        stop(root)
        raise
    return cluster


def wait_idle(cluster: LocalSlurm, timeout_s: float = 30.0) -> None:
    """Wait until the cluster's node is idle; RuntimeError with the daemons' logs when it is not in time."""
    deadline = time.monotonic() + timeout_s
    state = ""
    while time.monotonic() < deadline:
        out = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True, env=cluster.env)
        state = out.stdout.strip()
        if out.returncode == 0 and state.startswith("idle"):
            return
        time.sleep(0.5)
    logs = "\n".join(f"--- {p.name}:\n" + p.read_text()[-2000:]
                     for p in (cluster.root / "slurmctld.log", cluster.root / "slurmd.log") if p.exists())
    raise RuntimeError(f"local Slurm in {cluster.root}: node not idle within {timeout_s:.0f} s (state {state!r})\n{logs}")


def stop_controller(cluster: LocalSlurm) -> None:
    """End slurmctld only (slurmd and munged keep running): a controller that is down."""
    _end(cluster.root / "slurmctld.pid")


def start_controller(cluster: LocalSlurm) -> None:
    """Start slurmctld again from its saved state."""
    subprocess.run([_exe("slurmctld"), "-f", str(cluster.conf)], check=True, env=cluster.env)


def _firewall_rule(root: Path, port: int) -> list[str]:
    return ["INPUT", "-p", "tcp", "--dport", str(port), "!", "-i", "lo", "-m", "comment", "--comment",
            f"dislomob-slurm {root}", "-j", "DROP"]


def guard_port(root: Path, port: int) -> bool:
    """Drop TCP packets to ``port`` that arrive on any interface but loopback (IPv4 and IPv6); False when this
    cannot be done here (not root, no iptables)."""
    tools = [shutil.which(t) for t in ("iptables", "ip6tables")]
    if os.geteuid() != 0 or not all(tools):
        print(f"local_slurm: slurmctld's port {port} listens on every interface (no root or iptables to "
              "restrict it to loopback)", file=sys.stderr)
        return False
    for tool in tools:
        subprocess.run([tool, "-I", *_firewall_rule(root, port)], check=True)
    return True


def unguard_ports(root: Path) -> None:
    """Remove the rules :func:`guard_port` added for the cluster in ``root``."""
    for tool in filter(None, (shutil.which(t) for t in ("iptables", "ip6tables"))):
        if os.geteuid() != 0:
            return
        rules = subprocess.run([tool, "-S", "INPUT"], capture_output=True, text=True).stdout.splitlines()
        for rule in rules:
            if f'"dislomob-slurm {root}"' in rule and rule.startswith("-A INPUT"):
                port = rule.split("--dport ")[1].split()[0]
                subprocess.run([tool, "-D", *_firewall_rule(root, int(port))], check=False)


def guarded_ports(root: str | Path) -> list[int]:
    """The controller ports of ``root``'s cluster that iptables restricts to loopback."""
    if os.geteuid() != 0 or not shutil.which("iptables"):
        return []
    rules = subprocess.run(["iptables", "-S", "INPUT"], capture_output=True, text=True).stdout.splitlines()
    return [int(r.split("--dport ")[1].split()[0]) for r in rules
            if f'"dislomob-slurm {Path(root).resolve()}"' in r and "! -i lo" in r and "-j DROP" in r]


def _pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None


def stop(root: str | Path, timeout_s: float = 15.0) -> None:
    """End the cluster's daemons in ``root`` (slurmd, slurmctld, munged) and wait for them to exit."""
    root = Path(root).resolve()
    conf = root / "slurm.conf"
    if conf.exists() and _pid(root / "slurmctld.pid") is not None:  # cancel what still runs, while Slurm can
        env = {**os.environ, "SLURM_CONF": str(conf)}
        subprocess.run(["scancel", "--full", f"--partition={PARTITION}"], capture_output=True, env=env, timeout=30)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            out = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True, env=env, timeout=30)
            if out.returncode != 0 or not out.stdout.split():
                break
            time.sleep(0.5)
    for pid_file in (root / "slurmd.pid", root / "slurmctld.pid", root / "munge" / "munged.pid"):
        _end(pid_file, timeout_s)
    _end_job_processes(root)
    unguard_ports(root)


def _end_job_processes(root: Path) -> None:
    """SIGKILL job steps the stopped daemons left: every slurmstepd with a descendant whose command line names
    ``root`` (the batch scripts in its spool), with all its descendants."""
    import psutil

    for step in psutil.process_iter(["pid", "name"]):
        try:
            if not (step.info["name"] or "").startswith("slurmstepd"):
                continue
            kids = step.children(recursive=True)
            if any(str(root) in " ".join(k.cmdline()) for k in kids):
                for p in [*kids, step]:
                    p.kill()
        except psutil.Error:
            continue


def _end(pid_file: Path, timeout_s: float = 15.0) -> None:
    """SIGTERM the daemon of ``pid_file``, SIGKILL after ``timeout_s``, and remove the file."""
    pid = _pid(pid_file)
    if pid is None:
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pid_file.unlink(missing_ok=True)
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.1)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie child of ours counts as ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def listening_addresses(pids: list[int]) -> set[str]:
    """The local IPv4/IPv6 addresses on which any of ``pids`` has a listening TCP socket (from /proc)."""
    inodes = set()
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").glob("*"):
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    out = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in Path(table).read_text().splitlines()[1:]:
            f = line.split()
            if f[3] == "0A" and f[9] in inodes:  # state LISTEN
                hexaddr = f[1].split(":")[0]
                if width == 8:
                    out.add(socket.inet_ntop(socket.AF_INET, bytes.fromhex(hexaddr)[::-1]))
                else:
                    raw = b"".join(bytes.fromhex(hexaddr[i:i + 8])[::-1] for i in range(0, 32, 8))
                    out.add(socket.inet_ntop(socket.AF_INET6, raw))
    return out


def daemon_pids(root: str | Path) -> list[int]:
    """Pids of the cluster's running daemons."""
    root = Path(root)
    pids = [_pid(p) for p in (root / "slurmd.pid", root / "slurmctld.pid", root / "munge" / "munged.pid")]
    return [p for p in pids if p is not None and Path(f"/proc/{p}").exists()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("action", choices=("start", "stop"))
    ap.add_argument("root", type=Path)
    ap.add_argument("--cpus", type=int, default=None)
    args = ap.parse_args(argv)
    if args.action == "start":
        c = start(args.root, args.cpus)
        print(f"export SLURM_CONF={c.conf}")
    else:
        stop(args.root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
