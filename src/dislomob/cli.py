"""Command-line interface: one subcommand per pipeline stage plus single-run tools."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from dislomob.config import ConfigError, load_config
from dislomob.errors import DislomobError, InputFileError


LOOP_COMMANDS = ("simulate", "featurize", "train")


def _config(args: argparse.Namespace):
    """The params of ``--params``; with ``--loops`` those of the shear-loop dataset (dislomob.loop_profile)."""
    cfg = load_config(args.params)
    if getattr(args, "loops", False):
        from dislomob.loop_profile import loop_config

        return loop_config(cfg)
    return cfg


def _cmd_simulate(args: argparse.Namespace) -> int:
    cfg = _config(args)
    retry_failed = bool(getattr(args, "retry_failed", False))
    if args.out is None:
        from dislomob.md.dataset import simulate_dataset, summary_lines

        out_dir = args.out_dir or cfg.dataset.out_dir
        index = simulate_dataset(cfg, out_dir, progress=not args.quiet, retry_failed=retry_failed)
        print("\n".join(summary_lines(index, out_dir)))
        return index["exit_status"]
    if args.temperature_k is None or args.stress_gpa is None or args.angle_deg is None:
        raise ConfigError("simulate --out needs --temperature-k, --stress-gpa and --angle-deg")
    from dislomob.config import parse_config
    from dislomob.md.dispatch import check_out_dir
    from dislomob.md.run import RunSpec, cached_run, simulate

    md_update = {"geometry": args.geometry or cfg.md.geometry}
    if args.duration_ps is not None:
        md_update["duration_ps"] = args.duration_ps
    if args.threads is not None:
        md_update["threads"] = args.threads
    if args.write_ca:
        md_update["write_ca"] = True
    data = cfg.model_dump()
    data["md"].update(md_update)
    cfg = parse_config(data)
    spec = RunSpec(args.temperature_k, args.stress_gpa, args.angle_deg, cfg.md.geometry, args.seed if args.seed is not None else cfg.seed)
    out = Path(args.out)
    # --out FILE.h5: the run is cached as <key>.h5 next to it and copied to FILE (the cache keeps it);
    # --out FOLDER: the run is <key>.h5 in FOLDER. Checked before any MD.
    cache_dir = out.parent if out.suffix else out
    check_out_dir(cache_dir)
    if out.suffix and out.is_dir():
        raise ValueError(f"simulate --out {out}: a folder is in the way: allowed a trajectory file path (.h5) or a folder")
    if out.suffix and out.suffix != ".h5":
        raise ValueError(f"simulate --out {out}: allowed a trajectory file path ending in .h5, or a folder")
    path = simulate(spec, cfg.md, cfg.material, cache_dir, progress=not args.quiet, force=args.force,
                    retry_failed=retry_failed)
    if out.suffix and path != out:
        _copy_run(path, out)
        path = out
    c = cached_run(path)
    if c.state == "unreadable":
        print(f"{path}: unreadable ({c.reason})", file=sys.stderr)
        return 1
    from dislomob.md.trajectory import read_meta

    meta = read_meta(path)
    status = meta.status
    if meta.status == "failed":
        status += f" ({meta.failure_class or 'physics'}, attempt {meta.attempts})"
    print(f"{path}: status={status}" + (f": {meta.failure_reason}" if meta.failure_reason else ""))
    if meta.status == "failed" and meta.failure_class != "transient" and not retry_failed:
        print("simulate: a physics failure is kept as the run's result: --retry-failed runs it again", file=sys.stderr)
    return 0 if meta.status != "failed" else 1


def _copy_run(cached: Path, out: Path) -> None:
    """Copy a cached run (and its ``_ca`` folder) to ``out`` atomically; the cache keeps its file."""
    import shutil

    from dislomob.atomic import atomic_path

    with atomic_path(out, suffix=".h5") as tmp:
        shutil.copyfile(cached, tmp)
    ca_dir = cached.parent / f"{cached.stem}_ca"
    if ca_dir.is_dir():
        shutil.copytree(ca_dir, out.parent / f"{out.stem}_ca", dirs_exist_ok=True)


def inspect_trajectory(path: Path, skip_ps: float) -> dict:
    """Metadata plus per-line Burgers vector, character and mean glide velocity (m/s) of a trajectory file."""
    from dislomob.md.analysis import summarize
    from dislomob.md.trajectory import meta_summary, read_trajectory

    try:
        traj = read_trajectory(path)
    except Exception as err:  # empty, truncated or junk: h5py/pydantic raise many kinds
        raise InputFileError(f"{path}: unreadable trajectory ({type(err).__name__}: {' '.join(str(err).split())})") from None
    meta = meta_summary(traj.meta)
    meta["n_frames"] = len(traj.frames)
    lines = []
    for s in summarize(traj, skip_ps=skip_ps):
        lines.append(
            {
                "burgers": s.burgers,
                "character_deg": None if math.isnan(s.character_deg) else round(s.character_deg, 3),
                "velocity_m_s": None if math.isnan(s.velocity_m_s) else round(s.velocity_m_s, 2),
                "glide_plane_z_angstrom": round(s.glide_plane_z_angstrom, 3),
                "is_loop": s.is_loop,
            }
        )
    ref = traj.meta.lattice_reference
    frame = {"measured": "crystal (position recorded by the MD)",
             "inferred_inversion": "crystal (position inferred after the fact from the dipole's inversion symmetry)",
             None: "lab (this file has no crystal position: rerun it to record one)"}[ref]
    return {"metadata": meta, "lines": lines, "velocity_frame": frame}


def _terminate_on_sigterm() -> None:
    """SIGTERM (kill, timeout, dvc) unwinds like Ctrl-C: temporary files go, an MLflow run is ended."""
    import signal

    def _handler(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, _handler)


def _cmd_featurize(args: argparse.Namespace) -> int:
    cfg = _config(args)  # before torch is imported: a bad params file fails in a second
    _terminate_on_sigterm()
    from dislomob.features.featurize import featurize_dataset, featurize_file

    if args.file is None:
        summary = featurize_dataset(cfg, args.in_dir or cfg.dataset.out_dir, args.out_dir or cfg.features.out_dir, args.summary)
        for s in summary["skipped"]:
            print(f"dislomob: featurize: skipped {s['file']}: {s['reason']}"
                  + ("; its earlier graph file kept" if s["previous_graphs_kept"] else ""), file=sys.stderr)
        print(f"featurize: {summary['n_graphs']} graphs from {summary['n_trajectories']} trajectories, "
              f"{summary['n_rejected']} frames rejected, {summary['n_skipped']} files skipped (see {args.summary}), "
              f"Peach-Koehler sign agreement {summary['pk_agreement']}")
        return 0
    if args.out is None:
        raise ConfigError("featurize FILE needs --out FILE.pt")
    entry = featurize_file(cfg, args.file, args.out)
    entry.pop("_records")
    print(json.dumps(entry, indent=2, default=str))
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    cfg = _config(args)  # before torch and Lightning are imported
    _terminate_on_sigterm()
    from dislomob.train.module import TrainingDiverged
    from dislomob.train.stage import train_stage

    try:
        metrics = train_stage(cfg, args.graphs_dir or cfg.features.out_dir, cfg.train.model_dir, args.metrics,
                              progress=not args.quiet)
    except TrainingDiverged as err:
        print(f"dislomob: training stopped: {err}", file=sys.stderr)
        return 1
    print(f"train: test median error {metrics.get('test_error_median')}, baseline {metrics.get('baseline_test_error_median')}, "
          f"relative uncertainty {metrics.get('uncertainty_rel')}")
    return 0


def _cmd_tune(args: argparse.Namespace) -> int:
    cfg = _config(args)  # before torch, Lightning and Optuna are imported
    _terminate_on_sigterm()
    from dislomob.tune.stage import tune_stage

    m = tune_stage(cfg, args.graphs_dir or cfg.features.out_dir, args.out_dir or cfg.tune.out_dir, args.metrics,
                   progress=not args.quiet)
    print(f"tune: {m['trials_finished']} trials ({m['trials_run_now']} now; {m['trials_pruned']} pruned), best "
          f"validation loss {m['best_val_loss_angstrom']:.4g} A with widths F/B/E {m['best_width_f']}/"
          f"{m['best_width_b']}/{m['best_width_e']}, depth {m['best_depth']}, learning rate {m['best_learning_rate']:.3g}")
    return 0


def _cmd_al_data(args: argparse.Namespace) -> int:
    cfg = _config(args)
    from dislomob.active.pool import prepare_al_data

    out = prepare_al_data(cfg, args.md_dir or cfg.active.md_dir, args.graphs_dir or cfg.active.graphs_dir,
                          progress=not args.quiet)
    print(f"al-data: {out['n_test_usable']} of {out['n_test']} test runs, {out['n_calibration_usable']} of "
          f"{out['n_calibration']} calibration runs and {out['n_candidates_usable']} of "
          f"{out['n_candidates']} candidates usable")
    for traj, why in out["unusable"].items():
        print(f"  unusable {traj}: {why}")
    return 0 if out["n_test_usable"] and (out["n_calibration_usable"] or not out["n_calibration"]) else 1


def _cmd_al(args: argparse.Namespace) -> int:
    cfg = _config(args)  # before torch and Lightning are imported
    _terminate_on_sigterm()
    from dislomob.active.loop import run_strategy
    from dislomob.atomic import write_json

    ac = cfg.active
    summary = run_strategy(cfg, args.strategy, args.initial_graphs or cfg.features.out_dir, args.md_dir or ac.md_dir,
                           args.graphs_dir or ac.graphs_dir, args.work_dir or ac.work_dir, progress=not args.quiet,
                           simulate=not args.offline, seed=args.seed)
    write_json(args.metrics or f"metrics/al_{args.strategy}.json", summary)
    print(f"al {args.strategy}: {summary['iterations']} iterations, {summary['n_queries']} queries, stopped by "
          f"{summary['stop_reason']} (threshold reached: {summary['reached']}), test error {summary['test_error_median']}")
    return 0


def _cmd_al_report(args: argparse.Namespace) -> int:
    cfg = _config(args)
    from dislomob.active.report import write_report

    summaries = {}
    for s in cfg.active.strategies:
        path = Path(args.metrics_dir) / f"al_{s}.json"
        try:
            summaries[s] = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise DislomobError(f"{path}: no readable summary of strategy {s!r} ({err}); run `dislomob al --strategy {s}`")
    m = write_report(summaries, cfg.active.threshold, args.out, args.plots_dir, args.png)
    print(f"al-report: active {m.get('active', {}).get('queries_to_threshold')} vs passive "
          f"{m.get('passive', {}).get('queries_to_threshold')} queries to threshold, saving {m['saving_pct']} %")
    return 0


def _cmd_register(args: argparse.Namespace) -> int:
    cfg = _config(args)  # before torch and MLflow are imported
    _terminate_on_sigterm()
    from dislomob.registry.stage import register_stage

    sanity = cfg.rollout.graphs_dir if args.sanity_graphs_dir is None else args.sanity_graphs_dir
    extra = sorted(Path(sanity).glob("*.pt")) if sanity else []
    ac = cfg.active
    out = register_stage(cfg, args.al_dir or ac.work_dir, args.md_dir or ac.md_dir, args.graphs_dir or ac.graphs_dir,
                         args.example, args.out_dir or cfg.registry.out_dir, args.metrics, args.train_metrics,
                         sanity_graph_files=extra)
    print(f"register: {out['model_name']} version {out['version']} ({out['source']}) -> {out['alias']}: "
          f"{out['reason']}; " + (f"champion is version {out['champion_version']} ({out['champion_uri']})"
                                   if out["champion_version"] is not None else
                                   f"no champion: later stages use {out['local_copy_uri']}"))
    return 0


def _cmd_inspect(args: argparse.Namespace) -> int:
    path = Path(args.file)
    if not path.is_file():
        raise ConfigError(f"inspect: file {path} not found")
    if path.suffix == ".pt":
        from dislomob.features.featurize import inspect_graph_file

        ginfo = inspect_graph_file(path)
        if args.json:
            print(json.dumps(ginfo, indent=2, sort_keys=True, default=str))
        else:
            for k, v in ginfo.items():
                print(f"  {k:28s} {v}")
        return 0
    info = inspect_trajectory(path, args.skip_ps)
    if args.json:
        print(json.dumps(info, indent=2, sort_keys=True))
        return 0
    m = info["metadata"]
    print(f"{path}  status={m['status']}" + (f"  reason: {m['failure_reason']}" if m.get("failure_reason") else ""))
    for k in ("geometry", "temperature_k", "stress_gpa", "angle_deg", "requested_angle_deg", "line_direction", "n_atoms",
              "box_angstrom", "passing_stress_gpa", "measured_stress_gpa", "duration_ps", "n_frames", "wall_time_s", "potential", "seed"):
        print(f"  {k:22s} {m.get(k)}")
    for e in m.get("events", []):
        print(f"  event: {e['kind']} at {e['time_ps']} ps: {e['detail']}")
    print(f"  velocities relative to: {info['velocity_frame']}")
    for i, ln in enumerate(info["lines"]):
        print(f"  line {i}: b={ln['burgers']} character={ln['character_deg']} deg  velocity={ln['velocity_m_s']} m/s"
              + ("  (loop: radial)" if ln["is_loop"] else ""))
    return 0


def _registry_uri(args: argparse.Namespace) -> str:
    """--registry-uri, else MLFLOW_REGISTRY_URI / MLFLOW_TRACKING_URI, else the params' registry (registry.tracking_uri
    or train.tracking_uri)."""
    import os

    uri = args.registry_uri or os.environ.get("MLFLOW_REGISTRY_URI") or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    cfg = _config(args)
    return cfg.registry.tracking_uri or cfg.train.tracking_uri


def _cmd_ui(args: argparse.Namespace) -> int:
    cfg = _config(args)
    from dislomob.ui_links import free_port, start_ui, ui_links

    proc, base = (None, args.base_url) if args.print_only else start_ui(cfg, args.port or free_port())
    print(f"MLflow UI: {base} (tracking store {cfg.train.tracking_uri})")
    for key, link in ui_links(cfg, base).items():
        print(f"  {key}: {link.url or '-'}\n      {link.what}")
    if proc is None:
        return 0
    print("Ctrl-C stops the UI.", flush=True)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        proc.wait(timeout=30)
        return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    registered = args.model.startswith("models:/")
    for what, path in ((("network", Path(args.network)),) if registered else
                       (("model", Path(args.model)), ("network", Path(args.network)))):
        if not path.is_file():
            raise InputFileError(f"predict: {what} file {path} not found")
    if registered:
        from dislomob.registry.client import parse_model_uri

        parse_model_uri(args.model)  # a malformed URI fails before torch and MLflow are imported
        uri = _registry_uri(args)
        from dislomob.ddd.law import predict_network_file

        out = predict_network_file(args.model, args.network, registry_uri=uri)
    else:
        cfg = _config(args)  # before torch is imported: a bad params file fails in a second
        from dislomob.ddd.law import predict_network_file

        out = predict_network_file(args.model, args.network, cfg)
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"{out['network']}: {out['n_nodes']} nodes, T = {out['temperature_k']} K, stress {out['stress_source']}, "
          f"model {out['model']}")
    print(f"{'node':>6} {'vx (m/s)':>14} {'vy (m/s)':>14} {'vz (m/s)':>14} {'sigma (m/s)':>14}")
    for i, (v, s) in enumerate(zip(out["velocity_m_per_s"], out["sigma_m_per_s"])):
        print(f"{i:>6d} {v[0]:>14.6g} {v[1]:>14.6g} {v[2]:>14.6g} {s:>14.6g}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    cfg = _config(args)  # before torch is imported: a bad params file fails in a second
    from dislomob.export.stage import export_stage

    out = export_stage(cfg, args.model, args.out, args.metrics, args.network, cpp_check=not args.no_cpp_check)
    diff = out.get("max_abs_diff_velocity_m_per_s")
    print(f"export: {out['model']} -> {out['package']} (compile {out['compile_seconds']} s"
          + (f"; C++ vs Python max |dv| {diff:.3g} m/s on {out['check_network']})" if diff is not None else ")"))
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    cfg = _config(args)  # before torch and MLflow are imported
    _terminate_on_sigterm()
    from dislomob.evaluate.rollout_report import rollout_hook
    from dislomob.evaluate.rollout_runs import prepare_rollout_data
    from dislomob.evaluate.stage import evaluate_stage

    runs = prepare_rollout_data(cfg, args.rollout_md_dir or cfg.rollout.md_dir,
                                args.rollout_graphs_dir or cfg.rollout.graphs_dir, progress=False, simulate=False)
    for path, why in runs["unusable"].items():
        print(f"evaluate: rollout run {path} left out: {why}", file=sys.stderr)
    loops = None
    if not args.no_loops:
        from dislomob.evaluate.loops import LoopInputs
        from dislomob.loop_profile import loop_config

        lcfg = loop_config(cfg)
        loops = LoopInputs(lcfg, Path(lcfg.features.out_dir), Path(lcfg.train.model_dir))
    m = evaluate_stage(cfg, args.metrics, register_dir=args.register_dir or cfg.registry.out_dir,
                       al_md_dir=args.al_md_dir or cfg.active.md_dir,
                       al_graphs_dir=args.al_graphs_dir or cfg.active.graphs_dir, loops=loops,
                       rollout=rollout_hook(runs["trajectories"], progress=not args.quiet))
    for name, s in m["single_step"].items():
        p, b, d = (s["error_pct"][k] for k in ("pignn", "baseline", "pignn_minus_baseline"))
        print(f"evaluate {name} ({s['n_graphs']} graphs, {s['n_trajectories']} trajectories): median error PI-GNN "
              f"{p['median']:.1f}% [{p['low']:.1f}, {p['high']:.1f}], fitted law {b['median']:.1f}% [{b['low']:.1f}, "
              f"{b['high']:.1f}], difference {d['median']:.1f} [{d['low']:.1f}, {d['high']:.1f}] "
              f"({100 * p['level']:g}% intervals)")
    for law, checks in m["physics"].items():
        print(f"physics {law}: " + ", ".join(f"{k} {'pass' if c['passed'] else 'FAIL'} ({c['n_passed']}/{c['n']})"
                                            for k, c in checks.items()))
    for bucket, b in m.get("rollout", {}).get("by_bucket", {}).items():
        print(f"rollout {bucket} ({b['n_trajectories']} trajectories, {b['horizon_ps']:g} ps): relative error at the "
              f"end PI-GNN {b['pignn_error_end_median']:.3g}, fitted law {b['baseline_error_end_median']:.3g} "
              f"(rigid MD floor {b['rigid_floor_end_median']:.3g})")
    print(f"evaluate: {m['stage_wall_s']:.0f} s; figures in {cfg.evaluate.out_dir}")
    return 0


def _cmd_eval_data(args: argparse.Namespace) -> int:
    cfg = _config(args)
    _terminate_on_sigterm()
    from dislomob.evaluate.rollout_runs import prepare_rollout_data

    out = prepare_rollout_data(cfg, args.md_dir or cfg.rollout.md_dir, args.graphs_dir or cfg.rollout.graphs_dir,
                               progress=not args.quiet)
    print(f"eval-data: {out['n_usable']} of {out['n_runs']} rollout runs usable "
          f"({cfg.rollout.md_duration_ps:g} ps recorded each)")
    for path, why in out["unusable"].items():
        print(f"eval-data: {path} unusable: {why}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `dislomob` command."""
    p = argparse.ArgumentParser(prog="dislomob", description=__doc__)
    p.add_argument("--params", default="params.yaml", help="params file (default params.yaml)")
    p.add_argument("--loops", action="store_true",
                   help=f"the shear-loop dataset: params with the `loops` section applied ({', '.join(LOOP_COMMANDS)})")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("simulate", help="run the initial MD dataset (stage) or, with --out, one trajectory")
    s.add_argument("--temperature-k", type=float)
    s.add_argument("--stress-gpa", type=float)
    s.add_argument("--angle-deg", type=float)
    s.add_argument("--geometry", choices=["dipole", "loop"])
    s.add_argument("--duration-ps", type=float)
    s.add_argument("--threads", type=int)
    s.add_argument("--seed", type=int)
    s.add_argument("--write-ca", action="store_true", help="also write OVITO .ca files of the lines per frame")
    s.add_argument("--force", action="store_true", help="rerun even if the cache holds this run")
    s.add_argument("--retry-failed", action="store_true",
                   help="also rerun runs that failed for physical reasons (transient failures always rerun)")
    s.add_argument("--out", help="trajectory file (.h5) for a single run")
    s.add_argument("--out-dir", help="dataset folder for the stage (default: dataset.out_dir)")
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=_cmd_simulate)

    f = sub.add_parser("featurize", help="trajectories -> heterogeneous graphs (stage), or one FILE with --out")
    f.add_argument("file", nargs="?")
    f.add_argument("--out", help="graph file (.pt) for a single trajectory")
    f.add_argument("--in-dir", help="trajectory folder for the stage (default: dataset.out_dir)")
    f.add_argument("--out-dir", help="graph folder for the stage (default: features.out_dir)")
    f.add_argument("--summary", default="metrics/featurize.json", help="stage summary JSON")
    f.set_defaults(func=_cmd_featurize)

    t = sub.add_parser("train", help="train the PI-GNN ensemble and the baseline on the graphs (stage)")
    t.add_argument("--graphs-dir", help="graph folder (default: features.out_dir)")
    t.add_argument("--metrics", default="metrics/train.json", help="metrics JSON for dvc metrics show")
    t.add_argument("--quiet", action="store_true")
    t.set_defaults(func=_cmd_train)

    tu = sub.add_parser("tune", help="Optuna study over per-net widths, depth and learning rate (stage; resumable)")
    tu.add_argument("--graphs-dir", help="graph folder (default: features.out_dir)")
    tu.add_argument("--out-dir", help="folder of best_params.json (default: tune.out_dir)")
    tu.add_argument("--metrics", default="metrics/tune.json", help="metrics JSON for dvc metrics show")
    tu.add_argument("--quiet", action="store_true")
    tu.set_defaults(func=_cmd_tune)

    d = sub.add_parser("al-data", help="simulate and featurize the active-learning test set and candidate stream")
    d.add_argument("--md-dir", help="default: active.md_dir")
    d.add_argument("--graphs-dir", help="default: active.graphs_dir")
    d.add_argument("--quiet", action="store_true")
    d.set_defaults(func=_cmd_al_data)

    a = sub.add_parser("al", help="run (or resume) the active or passive learning loop of one strategy")
    a.add_argument("--strategy", required=True, choices=["active", "passive"])
    a.add_argument("--initial-graphs", help="graphs of the initial grid (default: features.out_dir)")
    a.add_argument("--md-dir", help="default: active.md_dir")
    a.add_argument("--graphs-dir", help="default: active.graphs_dir")
    a.add_argument("--work-dir", help="default: active.work_dir")
    a.add_argument("--metrics", help="summary JSON (default: metrics/al_<strategy>.json)")
    a.add_argument("--offline", action="store_true", help="use only runs that al-data prepared (no MD)")
    a.add_argument("--seed", type=int, help="loop seed: member initialization and passive's picks (default: params' seed)")
    a.add_argument("--quiet", action="store_true")
    a.set_defaults(func=_cmd_al)

    r = sub.add_parser("al-report", help="active vs passive: metrics/active_learning.json, plots and a PNG")
    r.add_argument("--metrics-dir", default="metrics")
    r.add_argument("--out", default="metrics/active_learning.json")
    r.add_argument("--plots-dir", default="plots", help="DVC plots rows, one file per strategy (al_<strategy>.json)")
    r.add_argument("--png", default="reports/active_learning.png")
    r.set_defaults(func=_cmd_al_report)

    g = sub.add_parser("register", help="register the chosen ensemble (registry.source) in the MLflow Model Registry: "
                                        "champion if its test error is not worse, else challenger")
    g.add_argument("--al-dir", help="active-learning work folder (its active/ strategy; default: active.work_dir)")
    g.add_argument("--md-dir", help="MD runs of the fixed test set (default: active.md_dir)")
    g.add_argument("--graphs-dir", help="graphs of the fixed test set (default: active.graphs_dir)")
    g.add_argument("--example", default="examples/networks/dipole_fe.json", help="network file: the input example")
    g.add_argument("--train-metrics", default="metrics/train.json", help="train stage metrics (tags of a train source)")
    g.add_argument("--out-dir", help="local copy of the champion (default: registry.out_dir)")
    g.add_argument("--metrics", default="metrics/register.json")
    g.add_argument("--sanity-graphs-dir", default=None,
                   help="more held-out runs' graphs for the MD sanity checks (the eval_data stage's; '' for none)")
    g.set_defaults(func=_cmd_register)

    i = sub.add_parser("inspect", help="show a trajectory's metadata and per-line velocities, or a graph file's counts")
    i.add_argument("file")
    i.add_argument("--json", action="store_true")
    i.add_argument("--skip-ps", type=float, default=1.0, help="ignore the first ps when fitting velocities")
    i.set_defaults(func=_cmd_inspect)

    u = sub.add_parser("ui", help="the MLflow UI on 127.0.0.1 with direct links: AL comparison chart, tuning study, "
                                  "registered champion")
    u.add_argument("--port", type=int, default=None, help="default: a free port")
    u.add_argument("--print-only", action="store_true", help="print the links for --base-url; start nothing")
    u.add_argument("--base-url", default="http://127.0.0.1:5000", help="with --print-only: where a UI already runs")
    u.set_defaults(func=_cmd_ui)

    pr = sub.add_parser("predict", help="nodal velocities (m/s) and their ensemble spread for a DDD network file")
    pr.add_argument("--model", required=True,
                    help="ensemble file written by save_ensemble (e.g. models/train/ensemble.pt) or a registered "
                         "model URI (models:/<name>@champion, models:/<name>/<version>)")
    pr.add_argument("--registry-uri", help="MLflow registry of a models:/ URI (default: MLFLOW_REGISTRY_URI or "
                                           "MLFLOW_TRACKING_URI, else registry.tracking_uri / train.tracking_uri)")
    pr.add_argument("network", help="network JSON file (docs/ddd_network_format.md)")
    pr.add_argument("--json", action="store_true", help="print JSON instead of a table")
    pr.set_defaults(func=_cmd_predict)

    ex = sub.add_parser("export", help="the law as an AOTInductor .pt2 package for DDD codes (docs/export_contract.md), "
                                       "checked in C++ against Python (stage)")
    ex.add_argument("--model", default=None, help="ensemble file (default: models/register/ensemble.pt if present, "
                                                  "else models/train/ensemble.pt)")
    ex.add_argument("--out", default="models/export/law.pt2", help="package path (.pt2)")
    ex.add_argument("--metrics", default="metrics/export.json")
    ex.add_argument("--network", default="examples/networks/dipole_fe.json", help="network traced and checked")
    ex.add_argument("--no-cpp-check", action="store_true", help="skip building and running the C++ example")
    ex.set_defaults(func=_cmd_export)

    ev = sub.add_parser("evaluate", help="single-step errors by angle/T/stress with bootstrap intervals, "
                                         "interpretability curves, physics checks and figures (stage)")
    ev.add_argument("--metrics", default="metrics/evaluate.json")
    ev.add_argument("--register-dir", help="the register stage's copy of the champion (default: registry.out_dir)")
    ev.add_argument("--al-md-dir", help="default: active.md_dir")
    ev.add_argument("--al-graphs-dir", help="default: active.graphs_dir")
    ev.add_argument("--rollout-md-dir", help="the eval_data stage's rollout trajectories (default: rollout.md_dir)")
    ev.add_argument("--rollout-graphs-dir", help="default: rollout.graphs_dir")
    ev.add_argument("--no-loops", action="store_true",
                    help="leave out the shear-loop evaluations and rollouts (no `dislomob --loops` data)")
    ev.add_argument("--quiet", action="store_true", help="no progress bars")
    ev.set_defaults(func=_cmd_evaluate)

    ed = sub.add_parser("eval-data", help="simulate and featurize the held-out long dipoles the rollouts are "
                                          "judged on (stage eval_data)")
    ed.add_argument("--md-dir", help="default: rollout.md_dir")
    ed.add_argument("--graphs-dir", help="default: rollout.graphs_dir")
    ed.add_argument("--quiet", action="store_true", help="no progress bars")
    ed.set_defaults(func=_cmd_eval_data)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `dislomob` console script."""
    args = build_parser().parse_args(argv)
    if args.loops and args.command not in LOOP_COMMANDS:
        print(f"dislomob: error: --loops with {args.command}: allowed with {', '.join(LOOP_COMMANDS)}", file=sys.stderr)
        return 2
    try:
        return args.func(args)
    except (DislomobError, ConfigError, ValueError, OSError) as err:
        # bad input (params, files): one line per problem, no traceback, exit status 2
        print(f"dislomob: error: {err}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, SystemExit) as err:
        from dislomob.tracking import interrupted

        if not interrupted(err):
            raise
        cause = err if isinstance(err, KeyboardInterrupt) else err.__context__
        print(f"dislomob: interrupted{f' ({cause})' if str(cause) else ''}; rerun the same command to resume",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
