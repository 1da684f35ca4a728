"""Parsl configuration for a Slurm cluster: one MD run per node slot, LAMMPS threads per worker.

Use it with, in params.yaml:

    executor:
      kind: config_file
      config_file: pipelines/parsl_slurm.py
      workers: 4            # MD runs at once per node

Edit the partition, account, walltime and worker_init (the command that activates the project's
environment on a compute node) for your site.
"""

from parsl.config import Config
from parsl.executors import HighThroughputExecutor
from parsl.launchers import SrunLauncher
from parsl.providers import SlurmProvider


def make_config(workers: int, run_dir: str) -> Config:
    """A HighThroughputExecutor on Slurm nodes with ``workers`` MD runs per node."""
    return Config(
        executors=[
            HighThroughputExecutor(
                label="md_slurm",
                max_workers_per_node=workers,
                provider=SlurmProvider(
                    partition="compute",
                    account=None,
                    nodes_per_block=1,
                    init_blocks=1,
                    max_blocks=8,
                    walltime="04:00:00",
                    launcher=SrunLauncher(),
                    worker_init="source .venv/bin/activate",
                ),
            )
        ],
        run_dir=run_dir,
        usage_tracking=0,
    )
