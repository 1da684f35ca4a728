"""One typed configuration for every stage, read from params.yaml.

Units are in the field names (``_k``, ``_gpa``, ``_ps``, ``_angstrom``, ``_nm``). A bad value
fails at load time with the key, the value and what is allowed; every number must be finite.

One source of truth for defaults: the defaults below ARE the demo profile (``params.yaml``; a test
keeps ``Config() == load_config("params.yaml")``), so a section missing from a demo params file takes
exactly the demo's values. A params file of any other profile must spell out every section. The YAML
reader rejects duplicated keys and reports syntax errors as one line with file and line number; this
module imports neither torch nor Lightning, so a bad params file fails within a second.
"""

from __future__ import annotations

import re

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from dislomob.errors import DislomobError


class ConfigError(DislomobError, ValueError):
    """A params file or value that cannot be used; the message names key, value and what is allowed."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class MaterialConfig(_Strict):
    """Interatomic potential and isotropic elastic constants of the metal."""

    potential: str = "Fe_mm.eam.fs"
    element: str = "Fe"
    lattice_a_angstrom: float = Field(2.8553, gt=0)
    shear_modulus_gpa: float = Field(82.0, gt=0)
    poisson_ratio: float = Field(0.29, gt=-1.0, lt=0.5)

    @field_validator("potential")
    @classmethod
    def _potential_exists(cls, v: str) -> str:
        """Name a missing potential early where MD can run; a law loaded without LAMMPS (DDD) never reads it."""
        from dislomob.md.potential import lammps_installed, resolve_potential

        if lammps_installed() or Path(v).is_file():
            resolve_potential(v)
        return v


class BoxConfig(_Strict):
    """Dipole cell size targets in nm (rounded to lattice periods) for x (glide), y (line), z (normal)."""

    glide_nm: float = Field(4.0, gt=0, le=10_000)
    line_nm: float = Field(3.0, gt=0, le=10_000)
    height_nm: float = Field(12.0, gt=0, le=10_000)

    @model_validator(mode="after")
    def _holds_dipole(self) -> "BoxConfig":
        for key, low in (("glide_nm", 2.0), ("line_nm", 0.5), ("height_nm", 4.0)):
            if getattr(self, key) < low:
                raise ValueError(f"md.box.{key}={getattr(self, key)} too small for a dipole: allowed >= {low} nm")
        return self


class LoopConfig(_Strict):
    """Shear loop geometry: radius and cell size in nm; a few minimization steps only (a free loop shrinks)."""

    radius_nm: float = Field(3.0, gt=0, le=10_000)
    glide_nm: float = Field(10.0, gt=0, le=10_000)
    line_nm: float = Field(10.0, gt=0, le=10_000)
    height_nm: float = Field(6.0, gt=0, le=10_000)
    minimize_steps: int = Field(20, ge=0, le=10_000_000)

    @model_validator(mode="after")
    def _loop_fits(self) -> "LoopConfig":
        for key in ("glide_nm", "line_nm"):
            size = getattr(self, key)
            if 2 * self.radius_nm + 2.0 > size:
                raise ValueError(
                    f"md.loop.{key}={size} too small for md.loop.radius_nm={self.radius_nm}: "
                    f"allowed >= 2*radius + 2 nm = {2 * self.radius_nm + 2.0}"
                )
        return self


class MDConfig(_Strict):
    """MD protocol: timestep, equilibration (no load), settling under load before the first recorded frame
    (lines start at rest and accelerate for a few ps), production length, DXA sampling, threads per rank, MPI ranks
    (``ranks`` > 1: LAMMPS on that many MPI processes, ``dislomob.md.mpi_run``; like ``threads``, not part of the run key)."""

    timestep_fs: float = Field(1.0, gt=0, le=50.0)
    minimize_steps: int = Field(2000, ge=0, le=10_000_000)
    equilibrate_ps: float = Field(0.5, ge=0, le=100_000)
    settle_ps: float = Field(3.0, ge=0, le=100_000)
    duration_ps: float = Field(2.0, gt=0, le=100_000)
    sample_every_ps: float = Field(0.1, gt=0, le=1000)
    pressure_damping_ps: float = Field(1.0, gt=0, le=1000)
    temperature_damping_ps: float = Field(0.1, gt=0, le=1000)
    threads: int = Field(1, ge=1, le=4096)
    ranks: int = Field(1, ge=1, le=100_000)
    write_ca: bool = False
    dxa_overlap: bool = False
    dxa_window_nm: float = Field(1.0, ge=0, le=1000)
    geometry: Literal["dipole", "loop"] = "dipole"
    box: BoxConfig = BoxConfig()
    loop: LoopConfig = LoopConfig()

    @model_validator(mode="after")
    def _sampling(self) -> "MDConfig":
        if self.sample_every_ps * 1000.0 < self.timestep_fs:
            raise ValueError(
                f"md.sample_every_ps={self.sample_every_ps} shorter than md.timestep_fs={self.timestep_fs}: "
                "allowed sample_every_ps >= timestep"
            )
        if self.sample_every_ps > self.duration_ps:
            raise ValueError(
                f"md.sample_every_ps={self.sample_every_ps} longer than md.duration_ps={self.duration_ps}: "
                "allowed sample_every_ps <= duration_ps (at least two frames)"
            )
        return self


class DatasetConfig(_Strict):
    """Initial grid of MD runs: every combination of temperature, stress and angle."""

    temperatures_k: list[float] = [300.0, 500.0]
    stresses_gpa: list[float] = [0.25, 0.5]
    angles_deg: list[float] = [0.0, 45.0, 90.0]
    out_dir: str = "data/md"

    @field_validator("temperatures_k", "stresses_gpa", "angles_deg")
    @classmethod
    def _in_range(cls, v: list[float], info) -> list[float]:
        ok, message = GRID_RANGES[info.field_name]
        for x in v:
            if not ok(x):
                raise ValueError(message.format(x))
        return v


GRID_RANGES = {  # dataset grid values: (allowed?, message)
    "temperatures_k": (lambda t: 0 < t <= 3000, "temperature {} K not allowed: 0 < T <= 3000 K"),
    "stresses_gpa": (lambda s: 0 <= s <= 5, "stress {} GPa not allowed: 0 <= stress <= 5 GPa"),
    "angles_deg": (lambda a: 0 <= a <= 180, "angle {} deg not allowed: 0 <= angle <= 180"),
}


WALLTIME = re.compile(r"^(\d+-)?\d{1,3}:\d{2}:\d{2}$")


class SlurmConfig(_Strict):
    """Parsl's SlurmProvider for MD: one block = one Slurm job of ``nodes_per_block`` nodes for ``walltime``
    (``[D-]HH:MM:SS``), running ``runs_per_node`` MD runs at once per node on ``cores_per_run`` cores each (at
    least ``md.ranks`` x ``md.threads``); at most ``max_blocks`` jobs at once. ``worker_init`` runs on the
    compute node before the workers start (null: activate the virtual environment this stage runs in, on a
    shared file system). ``address``: where compute nodes reach the submitting host (null: Parsl probes the
    host's addresses; 127.0.0.1 for a one-node cluster on this machine). ``scheduler_options``: extra
    ``#SBATCH`` lines, verbatim."""

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    walltime: str = "01:00:00"
    nodes_per_block: int = Field(1, ge=1, le=100_000)
    runs_per_node: int = Field(1, ge=1, le=4096)
    cores_per_run: int = Field(1, ge=1, le=4096)
    max_blocks: int = Field(1, ge=1, le=100_000)
    worker_init: str | None = None
    scheduler_options: str = ""
    address: str | None = None

    @field_validator("walltime")
    @classmethod
    def _walltime(cls, v: str) -> str:
        if not WALLTIME.match(v) or int(v.split(":")[-2]) > 59 or int(v.split(":")[-1]) > 59:
            raise ValueError(f"walltime {v!r} not allowed: [D-]HH:MM:SS, e.g. 04:00:00 or 1-00:00:00")
        return v


class ExecutorConfig(_Strict):
    """Where MD runs execute: Parsl's HighThroughputExecutor on this machine (``local``: ``workers`` runs at
    once), on Slurm (``slurm``: the ``slurm`` section), or from a Parsl config file (``config_file``: a Python
    file defining ``make_config(workers, run_dir)``). ``run_dir``: Parsl's run folder."""

    kind: Literal["local", "slurm", "config_file"] = "local"
    workers: int = Field(2, ge=1, le=100_000)
    config_file: str | None = None
    run_dir: str = ".parsl"
    slurm: SlurmConfig = SlurmConfig()


class FeaturesConfig(_Strict):
    """Featurization: node spacing (nm), Gauss points, core width (units of b), periodic images, dt (ps).

    ``burgers_sign`` maps the trajectory's spatial Burgers vector (relative to the order of the line's
    points) to the Hirth-Lothe convention in which the Peach-Koehler force is (sigma . b) x xi; OVITO's
    DXA lines glide against (sigma_applied . b_DXA) x xi in our MD runs, hence -1 (the featurize summary
    reports the agreement as ``pk_agreement``). ``smoothing_passes`` of binomial smoothing are applied
    before resampling (0: none; OVITO already smooths DXA lines). ``remove_mean_stress`` subtracts the
    cell average of the dislocations' image-summed stress (NPT holds the average at the applied stress).
    """

    node_spacing_nm: float = Field(0.6, gt=0, le=1000)
    min_nodes_per_line: int = Field(4, ge=3, le=10_000)
    smoothing_passes: int = Field(0, ge=0, le=1000)
    n_gauss: int = Field(2, ge=1, le=8)
    core_width_b: float = Field(1.0, gt=0, le=100)
    images: int = Field(4, ge=0, le=20)
    line_images: int = Field(2, ge=0, le=50)
    remove_mean_stress: bool = True
    dt_ps: float = Field(1.0, gt=0, le=100_000)
    frame_stride: int = Field(1, ge=1, le=100_000)
    burgers_sign: Literal[-1, 1] = -1
    out_dir: str = "data/graphs"


class TrainConfig(_Strict):
    """PI-GNN ensemble training: members, HeteroSAGE width/depth, optimizer, split by trajectory, tracking.

    ``split`` = train/test/validation fractions of trajectories; ``top_fraction`` of members (lowest
    validation loss) form the prediction; ``law`` = the registered law architecture to train
    (dislomob.model.laws; ``pignn``); ``warm_start`` = path of a previous ensemble file or null;
    ``energy_scale_ev`` scales the E-net output (eV); ``glide_only`` keeps the F-net force in the slip
    plane (no cross-slip component; screws in the MD do cross-slip, so off by default);
    ``bootstrap`` trains each member on its own bootstrap resample of the training trajectories
    (dislomob.train.bootstrap: members then disagree where the data do not constrain them);
    ``restore_best_epoch`` returns the weights of the epoch with the lowest mean validation loss (false:
    the last epoch, for datasets whose validation part is a single trajectory); ``weight_decay`` is
    AdamW's; ``divergence_factor`` stops a run whose loss exceeds that multiple of its first step's loss;
    ``threads`` = torch threads (1 measured fastest on the shared 2-core machine: 45 ms vs 105 ms per
    M=20 step); ``accelerator`` is Lightning's. ``width_f``/``width_b``/``width_e`` = hidden widths of the
    F-, B- and E-nets (null: ``width``); ``tuned_params`` = the ``tune`` stage's best-parameters file whose
    values override width_f/b/e, depth and learning_rate in the ``train`` stage (null: not used).
    """

    members: int = Field(20, ge=2, le=10_000)
    top_fraction: float = Field(0.5, gt=0, le=1)
    width: int = Field(20, ge=1, le=100_000)
    width_f: int | None = Field(None, ge=1, le=100_000)
    width_b: int | None = Field(None, ge=1, le=100_000)
    width_e: int | None = Field(None, ge=1, le=100_000)
    depth: int = Field(2, ge=1, le=100)
    learning_rate: float = Field(3e-3, gt=0, le=10)
    epochs: int = Field(60, ge=1, le=10_000_000)
    batch_size: int = Field(16, ge=1, le=10_000_000)
    split: tuple[float, float, float] = (0.7, 0.2, 0.1)
    energy_scale_ev: float = Field(0.01, gt=0, le=100)
    glide_only: bool = False
    bootstrap: bool = False
    restore_best_epoch: bool = False
    weight_decay: float = Field(0.0, ge=0, le=100)
    divergence_factor: float = Field(100.0, gt=1, le=1e12)
    baseline_steps: int = Field(300, ge=1, le=10_000_000)
    threads: int = Field(1, ge=1, le=4096)
    accelerator: Literal["cpu", "gpu", "auto"] = "cpu"
    law: str = Field("pignn", pattern=r"^[a-z][a-z0-9_]*$")
    warm_start: str | None = None
    tuned_params: str | None = "models/tune/best_params.json"
    tracking_uri: str = "sqlite:///mlflow/mlflow.db"
    experiment: str = "dislomob-train"
    model_dir: str = "models/train"

    @field_validator("split")
    @classmethod
    def _split(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        if min(v) <= 0 or abs(sum(v) - 1.0) > 1e-6:
            raise ValueError(f"split {list(v)} not allowed: three positive fractions (train, test, val) summing to 1")
        return v


def _range(key: str, v: tuple[float, float], low: float, high: float, unit: str) -> tuple[float, float]:
    """Check a (min, max) range: low <= min <= max <= high."""
    if not (low <= v[0] <= v[1] <= high):
        raise ValueError(f"active.{key}={list(v)} not allowed: [min, max] with {low} <= min <= max <= {high} {unit}")
    return v


class ActiveConfig(_Strict):
    """Active vs passive learning (issue 11; paper: pool 8, select 4, threshold 0.25, up to 15 iterations).

    Candidates are drawn per index from a seeded stream: T ~ U(temperature_range_k) K, resolved shear
    stress ~ U(stress_range_gpa) GPa, angle ~ U(0, 180) deg snapped to the nearest available character
    (dislomob.active.candidates). Each iteration scores ``pool_size`` candidates and adds ``select`` of
    them (highest uncertainty for ``active``, seeded random for ``passive``); the loop stops when the
    highest relative uncertainty is below ``threshold`` (sigma / mean |dx|) or after ``max_iterations``.
    ``test_trajectories`` fixed test runs come from the same distribution with ``test_seed``.
    ``noise_floor_angstrom`` is the DXA noise of a nodal displacement per step (dislomob.active.scoring:
    the denominator's floor, so that lines that barely move neither dominate nor vanish).
    ``calibrate_spread``: scores are the raw spread times a factor fitted each iteration on
    ``calibration_trajectories`` held-out runs of the candidate distribution (own domain of
    ``test_seed``; never trained or tested on): typical error / typical spread, so the stop rule
    compares an error-sized uncertainty with ``threshold``.
    """

    pool_size: int = Field(3, ge=1, le=100_000)
    select: int = Field(1, ge=1, le=100_000)
    threshold: float = Field(0.25, gt=0, le=100)
    max_iterations: int = Field(2, ge=0, le=100_000)
    temperature_range_k: tuple[float, float] = (100.0, 1000.0)
    stress_range_gpa: tuple[float, float] = (0.1, 1.0)
    candidate_seed: int = Field(2024, ge=0, lt=2**32)
    test_seed: int = Field(4711, ge=0, lt=2**32)
    test_trajectories: int = Field(3, ge=1, le=100_000)
    noise_floor_angstrom: float = Field(0.7, gt=0, le=1000)
    calibrate_spread: bool = True
    calibration_trajectories: int = Field(2, ge=1, le=100_000)
    strategies: list[Literal["active", "passive"]] = ["active", "passive"]
    md_dir: str = "data/al/md"            # MD runs of the fixed test set, calibration runs and candidates
    graphs_dir: str = "data/al/graphs"
    work_dir: str = "models/al"           # one folder per strategy, one per iteration
    experiment: str = "dislomob-al"

    @field_validator("temperature_range_k")
    @classmethod
    def _temperatures(cls, v: tuple[float, float]) -> tuple[float, float]:
        if v[0] <= 0:
            raise ValueError(f"active.temperature_range_k={list(v)} not allowed: 0 < min <= max <= 3000 K")
        return _range("temperature_range_k", v, 0.0, 3000.0, "K")

    @field_validator("stress_range_gpa")
    @classmethod
    def _stresses(cls, v: tuple[float, float]) -> tuple[float, float]:
        return _range("stress_range_gpa", v, 0.0, 5.0, "GPa")

    @field_validator("strategies")
    @classmethod
    def _strategies(cls, v: list[str]) -> list[str]:
        if not v or len(set(v)) != len(v):
            raise ValueError(f"active.strategies={v} not allowed: a non-empty list of distinct 'active', 'passive'")
        return v

    @model_validator(mode="after")
    def _select_fits_pool(self) -> "ActiveConfig":
        if self.select > self.pool_size:
            raise ValueError(f"active.select={self.select} larger than active.pool_size={self.pool_size}: "
                             "allowed select <= pool_size (each iteration takes select of the pool's candidates)")
        return self


class TuneConfig(_Strict):
    """Optuna study (issue 12) over the F-, B- and E-net widths, the depth and the learning rate.

    Each trial trains ``members`` members for ``epochs`` epochs (the rest as ``train``) on the train
    stage's training trajectories and is scored by the validation loss (Angstrom) of its selected members;
    test trajectories are never loaded. Widths are drawn log-uniformly from ``width_range``, depth
    uniformly from ``depth_range``, the learning rate log-uniformly from ``learning_rate_range``.
    ``n_trials`` = finished trials wanted in the study (a rerun on the same ``storage`` runs only the
    rest); ``timeout_s`` = no new trial starts after this many seconds of one invocation (null: none).
    TPE samples after ``sampler_startup_trials`` random trials; the median pruner (``pruner``: median or
    none) stops a trial whose validation loss is worse than the median of earlier trials at the same epoch,
    after ``pruner_startup_trials`` trials and ``pruner_warmup_epochs`` epochs.
    """

    n_trials: int = Field(16, ge=1, le=1_000_000)
    timeout_s: float | None = Field(240.0, gt=0, le=1e9)
    members: int = Field(4, ge=2, le=10_000)
    epochs: int = Field(30, ge=1, le=10_000_000)
    width_range: tuple[int, int] = (8, 40)
    depth_range: tuple[int, int] = (1, 3)
    learning_rate_range: tuple[float, float] = (1e-3, 1e-2)
    sampler_startup_trials: int = Field(4, ge=0, le=1_000_000)
    pruner: Literal["median", "none"] = "median"
    pruner_startup_trials: int = Field(2, ge=0, le=1_000_000)
    pruner_warmup_epochs: int = Field(5, ge=0, le=10_000_000)
    storage: str = "sqlite:///mlflow/optuna.db"
    study_name: str = "dislomob-tune"
    experiment: str = "dislomob-tune"
    out_dir: str = "models/tune"

    @model_validator(mode="after")
    def _ranges(self) -> "TuneConfig":
        for key, low, high in (("width_range", 1, 100_000), ("depth_range", 1, 100),
                               ("learning_rate_range", 1e-8, 10.0)):
            v = getattr(self, key)
            if not (low <= v[0] <= v[1] <= high):
                raise ValueError(f"tune.{key}={list(v)} not allowed: [min, max] with {low} <= min <= max <= {high}")
        return self


class RegistryConfig(_Strict):
    """MLflow Model Registry (issue 12, dislomob.registry): the ensemble registered under ``model_name``.

    ``source``: ``active`` = the active strategy's last completed AL iteration, ``train`` = the train stage's
    ensemble, ``auto`` = active when it has an iteration, else train. A new version takes the alias
    ``champion`` when its median test error on the AL fixed test set is not worse than the champion's,
    else ``challenger``. ``tracking_uri`` = registry and tracking store (null: ``train.tracking_uri``).
    """

    model_name: str = Field("dislomob-fe-mobility", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=200)
    source: Literal["auto", "active", "train"] = "auto"
    tracking_uri: str | None = None
    out_dir: str = "models/register"      # the local copy of the champion
    experiment: str = "dislomob-register"


class RolloutConfig(_Strict):
    """Multi-step DDD rollout against MD (dislomob.ddd.rollout): step (ps), horizon (ps), integrator, remesh.

    Steps of at most ``dt_ps`` ps (``euler`` or ``heun``; shorter where the fastest node would move more than
    ``max_move_angstrom`` Angstrom, null: never) from MD frame ``start_frame`` to every later MD frame
    up to ``horizon_ps`` (capped by the frames a trajectory holds); segments kept between ``min_spacing_factor``
    and ``max_spacing_factor`` times ``features.node_spacing_nm`` (max >= 2 min); the line distance samples
    every ``sample_spacing_angstrom``; ``overlay_snapshots`` times keep line coordinates for a figure. The
    ``eval_data`` stage's held-out dipoles (dislomob.evaluate.rollout_runs): every (``md_angles_deg`` deg,
    ``md_temperatures_k`` K, ``md_stresses_gpa`` GPa), recorded for ``md_duration_ps`` ps, seed ``md_seed``.
    """
    md_dir: str = "data/eval/md"          # the eval_data stage's held-out rollout trajectories
    graphs_dir: str = "data/eval/graphs"

    dt_ps: float = Field(0.05, gt=0, le=1000)
    horizon_ps: float = Field(5.0, gt=0, le=1e6)
    scheme: Literal["euler", "heun"] = "euler"
    max_move_angstrom: float | None = Field(1.0, gt=0, le=1e4)
    min_spacing_factor: float = Field(0.5, gt=0, le=100)
    max_spacing_factor: float = Field(1.5, gt=0, le=1000)
    sample_spacing_angstrom: float = Field(1.0, gt=0, le=1e4)
    start_frame: int = Field(0, ge=0, le=10_000_000)
    overlay_snapshots: int = Field(3, ge=0, le=1000)
    md_angles_deg: list[float] = [0.0, 35.26439, 90.0]
    md_temperatures_k: list[float] = [400.0]
    md_stresses_gpa: list[float] = [0.4]
    md_duration_ps: float = Field(5.0, gt=0, le=1000)
    md_seed: int = Field(4321, ge=0, lt=2**31)

    @field_validator("md_angles_deg", "md_temperatures_k", "md_stresses_gpa")
    @classmethod
    def _grid_values(cls, v: list[float], info) -> list[float]:
        if not v:
            raise ValueError(f"rollout.{info.field_name}=[] not allowed: at least one value")
        return v

    @model_validator(mode="after")
    def _spacing_order(self) -> RolloutConfig:
        if self.max_spacing_factor < 2.0 * self.min_spacing_factor:
            raise ValueError(f"rollout.max_spacing_factor={self.max_spacing_factor} not allowed: >= 2 x "
                             f"min_spacing_factor = {2.0 * self.min_spacing_factor} (remeshing must converge)")
        return self


def _increasing(key: str, v: list[float]) -> list[float]:
    """Check bin edges: at least two, strictly increasing."""
    if len(v) < 2 or any(b <= a for a, b in zip(v, v[1:])):
        raise ValueError(f"evaluate.{key}={list(v)} not allowed: at least two strictly increasing values")
    return v


class EvaluateConfig(_Strict):
    """The ``evaluate`` stage (issue 13, dislomob.evaluate): which ensemble, which test sets, bins, curves, statistics.

    ``model``: ``champion`` = the registered champion as the register stage copied it (models/register),
    ``train`` = the train stage's ensemble. ``test_sets``: ``split`` = the train stage's test trajectories,
    ``al`` = the active-learning fixed test runs (trajectories the ensemble trained on are left out). Single-step
    errors are binned by the ``*_bin_edges`` (outer bins open). Interpretability curves every ``angle_step_deg``
    from 0 to 180 deg at ``stresses_gpa`` (at ``reference_temperature_k``) and at ``temperatures_k`` (at
    ``reference_stress_gpa``). Medians get a ``interval`` bootstrap interval from ``bootstrap_resamples``
    resamples of the test trajectories. Figures, CSV plot data and physics.json go to ``out_dir``; the run
    goes to MLflow experiment ``experiment`` at ``train.tracking_uri``.
    """

    model: Literal["champion", "train"] = "champion"
    test_sets: list[Literal["split", "al"]] = ["split", "al"]
    angle_bin_edges_deg: list[float] = [0.0, 15.0, 45.0, 75.0, 105.0, 135.0, 165.0, 180.0]
    temperature_bin_edges_k: list[float] = [0.0, 200.0, 400.0, 600.0, 800.0, 1000.0]
    stress_bin_edges_gpa: list[float] = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    angle_step_deg: float = Field(15.0, gt=0, le=90)
    stresses_gpa: list[float] = [0.25, 0.5, 1.0]
    temperatures_k: list[float] = [100.0, 300.0, 500.0, 800.0]
    reference_temperature_k: float = Field(300.0, gt=0, le=3000)
    reference_stress_gpa: float = Field(0.5, gt=0, le=5)
    bootstrap_resamples: int = Field(2000, ge=10, le=10_000_000)
    interval: float = Field(0.9, gt=0, lt=1)
    seed: int = Field(0, ge=0, lt=2**32)
    experiment: str = "dislomob-evaluate"
    out_dir: str = "reports/evaluate"

    @field_validator("angle_bin_edges_deg", "temperature_bin_edges_k", "stress_bin_edges_gpa")
    @classmethod
    def _edges(cls, v: list[float], info) -> list[float]:
        return _increasing(info.field_name, v)

    @field_validator("stresses_gpa", "temperatures_k")
    @classmethod
    def _positive(cls, v: list[float], info) -> list[float]:
        if not v or any(x <= 0 for x in v):
            raise ValueError(f"evaluate.{info.field_name}={list(v)} not allowed: a non-empty list of values > 0")
        return v

    @field_validator("test_sets")
    @classmethod
    def _sets(cls, v: list[str]) -> list[str]:
        if not v or len(set(v)) != len(v):
            raise ValueError(f"evaluate.test_sets={v} not allowed: a non-empty list of distinct 'split', 'al'")
        return v


class LoopsConfig(_Strict):
    """The shear-loop dataset and its loop-trained ensemble (issue 13; dislomob.loop_profile; stages loop_md,
    loop_featurize, loop_train): the loop geometry (nm), settling and recorded MD (ps), the grid of temperatures
    (K) and resolved shear stresses (GPa), the box angle (deg; a loop holds every character), the graph step (ps),
    the trajectory split (train, test, val) and the folders and MLflow experiment. Every other setting (material,
    MD protocol, features, training) is the dipoles'."""

    loop: LoopConfig = LoopConfig(radius_nm=4.0, glide_nm=13.0, line_nm=11.0, height_nm=4.0)
    settle_ps: float = Field(0.2, ge=0, le=100_000)
    duration_ps: float = Field(1.2, gt=0, le=100_000)
    temperatures_k: list[float] = [300.0, 500.0]
    stresses_gpa: list[float] = [1.5, 1.75, 2.0, 2.25]
    angle_deg: float = Field(90.0, ge=0, le=180)
    dt_ps: float = Field(0.5, gt=0, le=100_000)
    split: tuple[float, float, float] = (0.7, 0.2, 0.1)
    md_dir: str = "data/loops/md"
    graphs_dir: str = "data/loops/graphs"
    model_dir: str = "models/loops/train"
    experiment: str = "dislomob-train-loops"

    @field_validator("temperatures_k", "stresses_gpa")
    @classmethod
    def _grid(cls, v: list[float], info) -> list[float]:
        if not v or any(not x > 0 for x in v):
            raise ValueError(f"loops.{info.field_name}={list(v)} not allowed: a non-empty list of values > 0")
        return v


class Config(_Strict):
    """The whole params.yaml."""

    profile: str = "demo"
    seed: int = Field(1234, ge=0, lt=2**32)
    material: MaterialConfig = MaterialConfig()
    md: MDConfig = MDConfig()
    dataset: DatasetConfig = DatasetConfig()
    executor: ExecutorConfig = ExecutorConfig()
    features: FeaturesConfig = FeaturesConfig()
    train: TrainConfig = TrainConfig()
    active: ActiveConfig = ActiveConfig()
    tune: TuneConfig = TuneConfig()
    registry: RegistryConfig = RegistryConfig()
    rollout: RolloutConfig = RolloutConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    loops: LoopsConfig = LoopsConfig()

    @model_validator(mode="after")
    def _slurm_cores(self) -> "Config":
        need = getattr(self.md, "ranks", 1) * self.md.threads
        if self.executor.kind == "slurm" and self.executor.slurm.cores_per_run < need:
            raise ValueError(f"executor.slurm.cores_per_run={self.executor.slurm.cores_per_run} is fewer than the {need} "
                             "cores one MD run uses (md.ranks x md.threads): allowed >= that")
        return self


def _format_errors(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"])
        value = e.get("input")
        msg = e["msg"].removeprefix("Value error, ")
        lines.append(f"  {key} = {value!r}: {msg}")
    return "invalid configuration:\n" + "\n".join(lines)


SECTIONS = tuple(k for k in Config.model_fields if k not in ("profile", "seed"))  # every section of params.yaml


def parse_config(data: dict) -> Config:
    """Validate a params mapping into a Config; raise ConfigError naming key, value, allowed.

    A profile other than ``demo`` must give every section: the defaults are the demo's values.
    """
    data = data or {}
    profile = data.get("profile", "demo")
    missing = [k for k in SECTIONS if k not in data]
    if profile != "demo" and missing:
        raise ConfigError(f"invalid configuration: profile {profile!r} misses section(s) {', '.join(missing)}: "
                          "allowed only in the demo profile (missing sections take the demo's values)")
    try:
        return Config.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_errors(err)) from None


class _DuplicateKey(Exception):
    def __init__(self, key: str, line: int, first_line: int):
        super().__init__(key, line, first_line)
        self.key, self.line, self.first_line = key, line, first_line


def _check_duplicates(node: yaml.Node, prefix: str = "") -> None:
    """Raise _DuplicateKey for a key given twice in one mapping (PyYAML would keep the last silently)."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key is not None and key != "<<":
                dotted = f"{prefix}.{key}" if prefix else key
                if key in seen:
                    raise _DuplicateKey(dotted, key_node.start_mark.line + 1, seen[key])
                seen[key] = key_node.start_mark.line + 1
            _check_duplicates(value_node, f"{prefix}.{key}" if prefix and key else (key or prefix))
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _check_duplicates(item, prefix)


def read_yaml(path: str | Path) -> object:
    """A YAML file's contents; duplicate keys and syntax errors raise a one-line ConfigError with file:line."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"params file {path} not found")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"params file {path} cannot be read: {err}") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is None:
            return None
        _check_duplicates(node)
        return yaml.safe_load(text)
    except _DuplicateKey as err:
        raise ConfigError(f"{path}:{err.line}: duplicate key {err.key} (first given at line {err.first_line}): "
                          "allowed once") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        what = " ".join(str(x) for x in (getattr(err, "context", None), getattr(err, "problem", None)) if x)
        raise ConfigError(f"{where}: YAML syntax error: {what or str(err).splitlines()[0]}") from None


def load_config(path: str | Path = "params.yaml") -> Config:
    """Read and validate params.yaml (a demo-profile file may leave out sections: they take the demo's values)."""
    path = Path(path)
    data = read_yaml(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"params file {path} must hold a mapping, got {type(data).__name__}")
    return parse_config(data)
