"""What DDD codes use: the dislocation network type and its file format (network), the network as the model's graph
(network_graph), the learned law's nodal velocities (law: MobilityLaw), the fitted baseline laws (baselines)."""
