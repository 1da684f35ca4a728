"""Discrete dislocation dynamics helpers: baseline mobility laws."""
