"""Character-angle buckets of dislocation lines: screw-like, mixed, edge-like (angles in degrees)."""

from __future__ import annotations

BUCKETS = ("screw_like", "mixed", "edge_like")


def bucket_of(angle_deg: float) -> str:
    """Bucket of a line at ``angle_deg`` between tangent and Burgers vector: screw-like within 30 deg
    of 0/180, edge-like within 30 deg of 90, mixed otherwise."""
    a = float(angle_deg) % 180.0
    if min(a, 180.0 - a) < 30.0:
        return "screw_like"
    if abs(a - 90.0) <= 30.0:
        return "edge_like"
    return "mixed"
