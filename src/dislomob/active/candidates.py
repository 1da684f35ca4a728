"""The seeded candidate stream and the fixed test set of active learning (temperatures K, stresses GPa, angles deg).

Candidate k of a stream depends only on (seed, k): its generator is ``numpy.random.default_rng([seed,
domain, k])``, so the k-th candidate is the same however many candidates are drawn before or after it,
and the active and passive strategies, which consume the same stream, ask for the same MD runs (the
content-addressed run cache runs each once). The test set uses its own seed and its own domain, so it
never coincides with the candidate stream even when both seeds are equal; the calibration set (held-out
runs of the candidate distribution that fit the spread calibration) has a third domain of the test seed.
"""

from __future__ import annotations

import numpy as np

from dislomob.config import ActiveConfig
from dislomob.md.crystal import nearest_orientation
from dislomob.md.run import RunSpec

CANDIDATE_DOMAIN = 0
TEST_DOMAIN = 1
CALIBRATION_DOMAIN = 2


def draw(k: int, seed: int, cfg: ActiveConfig, domain: int, geometry: str = "dipole") -> RunSpec:
    """The k-th run of the stream (seed, domain): T ~ U(temperature_range_k) K, resolved shear stress
    ~ U(stress_range_gpa) GPa, angle ~ U(0, 180) deg snapped to the nearest available character, and its
    own MD velocity seed (1 <= seed < 2**30, so the runs' thermal noise is independent)."""
    if k < 0:
        raise ValueError(f"candidate index k={k} not allowed: k >= 0")
    rng = np.random.default_rng([seed, domain, k])
    t, s, a = rng.uniform(size=3)
    (t0, t1), (s0, s1) = cfg.temperature_range_k, cfg.stress_range_gpa
    md_seed = int(rng.integers(1, 2**30))
    angle = nearest_orientation(180.0 * a).angle_deg
    return RunSpec(temperature_k=round(float(t0 + (t1 - t0) * t), 1), stress_gpa=round(float(s0 + (s1 - s0) * s), 4),
                   angle_deg=float(angle), geometry=geometry, seed=md_seed)


def candidate(k: int, seed: int, cfg: ActiveConfig, geometry: str = "dipole") -> RunSpec:
    """The k-th candidate (k >= 0) of the stream ``seed``; independent of how many others are drawn."""
    return draw(k, seed, cfg, CANDIDATE_DOMAIN, geometry)


def candidates(start: int, count: int, seed: int, cfg: ActiveConfig, geometry: str = "dipole") -> list[RunSpec]:
    """Candidates ``start`` .. ``start + count - 1`` of the stream ``seed`` (a pool refill)."""
    return [candidate(k, seed, cfg, geometry) for k in range(start, start + count)]


def test_set(n: int, seed: int, cfg: ActiveConfig, geometry: str = "dipole") -> list[RunSpec]:
    """The ``n`` fixed test runs: the candidate distribution drawn from the test stream ``seed``."""
    return [draw(k, seed, cfg, TEST_DOMAIN, geometry) for k in range(n)]


def calibration_set(n: int, seed: int, cfg: ActiveConfig, geometry: str = "dipole") -> list[RunSpec]:
    """The ``n`` calibration runs: the candidate distribution drawn from its own domain of the stream ``seed``
    (never trained on, never tested on; they only fit the spread calibration)."""
    return [draw(k, seed, cfg, CALIBRATION_DOMAIN, geometry) for k in range(n)]
