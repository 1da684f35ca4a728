"""Which candidates join the training set: highest uncertainty (active) or seeded random (passive).

IPSuite-style: each selector only says how candidates are ranked; :func:`select` does the
bookkeeping for all of them (a finite score per candidate, the errors naming the candidate, no index
twice, indices already taken left out, ties broken by the lower index, ``n`` larger than what is left
refused). Indices refer to the pool in its given order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np


def _label(i: int, names: Sequence[str] | None) -> str:
    return f"candidate {i}" + (f" ({names[i]})" if names is not None else "")


def select(priority: Sequence[float], n: int, exclude: Iterable[int] = (),
           names: Sequence[str] | None = None) -> list[int]:
    """Indices of the ``n`` highest ``priority`` values among the pool (highest first), leaving out ``exclude``.

    Ties go to the lower index. A NaN or infinite priority, an ``exclude`` index outside the pool, a
    negative ``n`` or an ``n`` above the number of candidates left raise ValueError naming them.
    """
    p = np.asarray(priority, dtype=np.float64).reshape(-1)
    if names is not None and len(names) != len(p):
        raise ValueError(f"{len(names)} names for {len(p)} candidates: one name per candidate")
    bad = np.flatnonzero(~np.isfinite(p))
    if len(bad):
        raise ValueError("score not finite for " + ", ".join(f"{_label(int(i), names)} = {p[i]}" for i in bad[:5])
                         + ("" if len(bad) <= 5 else f" and {len(bad) - 5} more") + ": a finite score per candidate")
    taken = sorted({int(i) for i in exclude})
    outside = [i for i in taken if not 0 <= i < len(p)]
    if outside:
        raise ValueError(f"exclude {outside} outside the pool of {len(p)} candidates (indices 0..{len(p) - 1})")
    left = len(p) - len(taken)
    if not 0 <= n <= left:
        raise ValueError(f"select={n} not allowed for a pool of {len(p)} candidates with {len(taken)} already taken: "
                         f"allowed 0 <= select <= {left}")
    order = np.lexsort((np.arange(len(p)), -p))  # highest first, then lowest index
    skip = set(taken)
    return [int(i) for i in order if int(i) not in skip][:n]


def top_uncertainty(scores: Sequence[float], n: int, exclude: Iterable[int] = (),
                    names: Sequence[str] | None = None) -> list[int]:
    """Active learning: the ``n`` candidates with the highest uncertainty scores (dislomob.active.scoring)."""
    return select(scores, n, exclude, names)


def random_selection(pool_size: int, n: int, seed: int | Sequence[int], exclude: Iterable[int] = (),
                     names: Sequence[str] | None = None) -> list[int]:
    """Passive learning: ``n`` candidates of the pool at random, reproducible from ``seed`` (an int or a
    sequence such as [seed, iteration]); the scores are not looked at."""
    if pool_size < 0:
        raise ValueError(f"pool_size={pool_size} not allowed: >= 0")
    return select(np.random.default_rng(seed).random(pool_size), n, exclude, names)
