"""Active vs passive learning side by side: the comparison metrics, the learning curves as a DVC plots
file and as a PNG (paper Fig. 3: highest candidate uncertainty against queries, and its error twin:
test error against queries, both strategies on the same fixed test set)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dislomob.active.loop import compare
from dislomob.atomic import atomic_path, write_json


def write_report(summaries: dict[str, dict], threshold: float, metrics_path: str | Path, plots_dir: str | Path,
                 png_path: str | Path) -> dict[str, Any]:
    """Write ``metrics/active_learning.json``, the DVC plots rows ``<plots_dir>/al_<strategy>.json`` (one row
    per iteration: queries, test error, highest and mean candidate uncertainty) and the PNG; return the metrics."""
    metrics = compare(summaries)
    write_json(metrics_path, metrics)
    for s, d in summaries.items():
        write_json(Path(plots_dir) / f"al_{s}.json", d.get("curve", []))
    _figure(summaries, threshold, Path(png_path))
    return metrics


def _figure(summaries: dict[str, dict], threshold: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_u, ax_e) = plt.subplots(1, 2, figsize=(9, 3.6), constrained_layout=True)
    style = {"active": ("tab:red", "o"), "passive": ("tab:blue", "s")}
    for s, d in summaries.items():
        color, marker = style.get(s, ("tab:gray", "^"))
        q = [p["n_queries"] for p in d.get("curve", [])]
        ax_u.plot(q, [p["uncertainty_rel_max"] for p in d["curve"]], marker=marker, color=color, label=s)
        ax_e.plot(q, [p["test_error_median"] for p in d["curve"]], marker=marker, color=color, label=s)
    ax_u.axhline(threshold, color="k", lw=0.8, ls="--", label=f"threshold {threshold:g}")
    ax_u.set(xlabel="MD queries", ylabel="highest candidate sigma / mean |dx|")
    ax_e.set(xlabel="MD queries", ylabel="median single-step test error")
    from matplotlib.ticker import MaxNLocator

    for ax in (ax_u, ax_e):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(frameon=False)
        ax.grid(alpha=0.3)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=120, format="png", metadata={"Software": None})
    plt.close(fig)
