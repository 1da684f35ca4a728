"""PNG figures of the evaluate stage (matplotlib, Agg backend): binned single-step errors, interpretability
curves with the MD points, predicted against MD straight-line speeds, and the bootstrap intervals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dislomob.atomic import atomic_path

LAW_STYLE = {"pignn": ("PI-GNN", "-", "o"), "baseline": ("fitted law", "--", "s")}
BIN_TITLES = {"angle": "character angle (deg)", "temperature": "temperature (K)", "stress": "resolved shear stress (GPa)"}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    _plt().close(fig)
    return path


def error_bins_figure(bins: dict[str, list[dict[str, Any]]], title: str, path: str | Path) -> Path:
    """Rows angle / temperature / stress; columns percentage and absolute (Angstrom) median error per bin with the
    interquartile range, PI-GNN and fitted law side by side; the number of graphs above each bin."""
    plt = _plt()
    fig, axes = plt.subplots(len(bins), 2, figsize=(11, 3.4 * len(bins)), squeeze=False, constrained_layout=True)
    for r, (by, rows) in enumerate(bins.items()):
        x = np.arange(len(rows))
        labels = [f"{row['low']:g}-{row['high']:g}\nn={row['n_graphs']}" for row in rows]
        for c, unit in enumerate(("pct", "angstrom")):
            ax = axes[r, c]
            for k, (law, (name, _, _)) in enumerate(LAW_STYLE.items()):
                med = np.array([np.nan if row[f"{law}_error_{unit}_median"] is None else row[f"{law}_error_{unit}_median"]
                                for row in rows], dtype=float)
                lo = np.array([np.nan if row[f"{law}_error_{unit}_q1"] is None else row[f"{law}_error_{unit}_q1"]
                               for row in rows], dtype=float)
                hi = np.array([np.nan if row[f"{law}_error_{unit}_q3"] is None else row[f"{law}_error_{unit}_q3"]
                               for row in rows], dtype=float)
                ax.bar(x + (k - 0.5) * 0.38, med, 0.38, label=name,
                       yerr=np.nan_to_num(np.vstack([med - lo, hi - med])), capsize=2)
            ax.set_xticks(x, labels, fontsize=7)
            ax.set_xlabel(f"{BIN_TITLES[by]} (n = graphs per bin)")
            ax.set_ylabel("median error (%)" if unit == "pct" else "median error (Angstrom)")
            if r == 0:
                ax.legend(fontsize=7)
    fig.suptitle(f"{title}\nbars: median, whiskers: interquartile range over the bin's graphs", fontsize=10)
    return _save(fig, Path(path))


def _curve(rows: list[dict[str, Any]], law: str, sweep: str, key: str, value: float) -> tuple[np.ndarray, dict]:
    sel = [r for r in rows if r["law"] == law and r["sweep"] == sweep and abs(r[key] - value) < 1e-9]
    sel.sort(key=lambda r: r["angle_deg"])
    return np.array([r["angle_deg"] for r in sel]), {k: np.array([r[k] for r in sel], dtype=float) for k in
                                                     ("f_over_b_m_per_s", "energy_ev", "speed_m_per_s",
                                                      "displacement_angstrom")}


def interpretability_figure(rows: list[dict[str, Any]], md: list[dict[str, Any]], grid, dt_ps: float,
                            path: str | Path) -> Path:
    """2 x 3 panels: F/B, speed and displacement against angle at several stresses (top), F/B, speed and E at
    several temperatures (bottom); PI-GNN solid, fitted law dashed, MD straight-line speeds as points in the
    colour of the curve with the same conditions."""
    plt = _plt()
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5), constrained_layout=True)
    cmap = plt.get_cmap("viridis")
    sweeps = (("stress", "stress_gpa", list(grid.stresses_gpa), "temperature_k", grid.reference_temperature_k, "GPa"),
              ("temperature", "temperature_k", list(grid.temperatures_k), "stress_gpa", grid.reference_stress_gpa, "K"))
    panels = (("f_over_b_m_per_s", "speed_m_per_s", "displacement_angstrom"),
              ("f_over_b_m_per_s", "speed_m_per_s", "energy_ev"))
    ylabels = {"f_over_b_m_per_s": "F/B (m/s)", "speed_m_per_s": "glide speed (m/s)",
               "displacement_angstrom": f"|dx| over {dt_ps:g} ps (Angstrom)", "energy_ev": "E (eV)"}
    for r, ((sweep, key, values, fixed_key, fixed, unit), keys) in enumerate(zip(sweeps, panels)):
        for i, v in enumerate(values):
            color = cmap(i / max(len(values) - 1, 1))
            for law, (name, ls, _) in LAW_STYLE.items():
                ang, cur = _curve(rows, law, sweep, key, v)
                for c, k in enumerate(keys):
                    axes[r, c].plot(ang, cur[k], ls, color=color, label=f"{name} {v:g} {unit}" if c == 0 else None)
            pts = [m for m in md if abs(m[key] - v) < 1e-6 and abs(m[fixed_key] - fixed) < 1e-6]
            for c, k in enumerate(keys):
                if k in ("speed_m_per_s", "displacement_angstrom") and pts:
                    scale = 1.0 if k == "speed_m_per_s" else dt_ps / 100.0
                    axes[r, c].scatter([m["angle_deg"] for m in pts], [m["speed_m_per_s"] * scale for m in pts],
                                       color=color, edgecolor="k", zorder=3, label="MD" if i == 0 else None)
        fixed_txt = f"{fixed:g} K" if fixed_key == "temperature_k" else f"{fixed:g} GPa"
        for c, k in enumerate(keys):
            axes[r, c].set_xlabel("character angle (deg)")
            axes[r, c].set_ylabel(ylabels[k])
            axes[r, c].set_title(f"{ylabels[k].split(' (')[0]}, {sweep} sweep at {fixed_txt}", fontsize=9)
            if axes[r, c].get_legend_handles_labels()[0]:
                axes[r, c].legend(fontsize=6)
    return _save(fig, Path(path))


def md_parity_figure(md: list[dict[str, Any]], path: str | Path) -> Path:
    """Predicted straight-line speed against the MD speed of each run (both laws; the line is equality); runs the
    ensemble never trained on are drawn solid with an edge, the others faint."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    top = max([1.0] + [abs(m[k]) for m in md for k in ("speed_m_per_s", "pignn_speed_m_per_s", "baseline_speed_m_per_s")])
    ax.plot([0, top], [0, top], "k:", lw=1)
    for law, (name, _, marker) in LAW_STYLE.items():
        for seen, style in ((True, {"alpha": 0.45}), (False, {"edgecolor": "k", "s": 60})):
            pts = [m for m in md if bool(m.get("seen_in_training", False)) == seen]
            if pts:
                ax.scatter([m["speed_m_per_s"] for m in pts], [m[f"{law}_speed_m_per_s"] for m in pts], marker=marker,
                           color="C0" if law == "pignn" else "C1",
                           label=f"{name}, {'trained on' if seen else 'unseen'} runs", **style)
    ax.set_xlabel("MD straight-line speed (m/s)")
    ax.set_ylabel("predicted speed of the straight line (m/s)")
    ax.set_title(f"straight dipoles at the MD conditions ({len(md)} runs)", fontsize=9)
    ax.legend(fontsize=8)
    return _save(fig, Path(path))


def interval_figure(intervals: dict[str, dict[str, dict[str, float]]], path: str | Path) -> Path:
    """Median single-step error (%) with its bootstrap interval per evaluation: PI-GNN, fitted law, difference."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 0.9 + 0.9 * len(intervals)))
    y = 0
    ticks, labels = [], []
    for ev, res in intervals.items():
        for key, label in (("pignn", "PI-GNN"), ("baseline", "fitted law"), ("pignn_minus_baseline", "PI-GNN - fitted")):
            iv = res[key]
            ax.errorbar(iv["median"], y, xerr=[[iv["median"] - iv["low"]], [iv["high"] - iv["median"]]], fmt="o", capsize=3)
            ticks.append(y)
            labels.append(f"{ev}: {label}")
            y += 1
        y += 0.5
    ax.axvline(0, color="k", lw=0.8)
    ax.set_yticks(ticks, labels, fontsize=8)
    level = next(iter(next(iter(intervals.values())).values()))["level"]
    ax.set_xlabel(f"median single-step error (%), {100 * level:g}% interval over test trajectories")
    return _save(fig, Path(path))
