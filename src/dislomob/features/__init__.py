"""Featurization: resample DXA lines into nodes and Gauss points, compute the non-singular elastic
stress of the periodic dislocation network, and build invariant heterogeneous graphs."""
