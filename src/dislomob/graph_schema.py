"""The contract between featurize (producer) and the model/training code (consumer).

One dislocation snapshot at time t becomes one PyG ``HeteroData`` graph. Lengths are in
Angstrom, times in ps, temperatures in K, stresses in GPa.

Vertex types
- ``node``: resampled line nodes.
    x      (n_node, NODE_FEATURES)  invariant node features (float32)
    pos    (n_node, 3)              Cartesian position at t, Angstrom (float64 kept as float32 ok)
    frame  (n_node, 3, 3)           rows = local orthonormal frame (b_hat, n_hat, s_hat) in Cartesian
    y      (n_node, 3)              target displacement to the line at t+dt, in the local frame, Angstrom
    temperature_k (n_node,)         temperature of the run, K
- ``gp``: Gauss points on segments.
    x      (n_gp, GP_FEATURES)      invariant GP features
    pos    (n_gp, 3)                Cartesian position, Angstrom
- ``target``: nodes of the ground-truth line at t+dt (for the node-to-segment loss).
    pos    (n_target, 3)            Cartesian position, Angstrom

Edge types
- ``('gp', 'to', 'node')`` and ``('node', 'to', 'gp')``: aggregation edges.
- ``('node', 'seg', 'node')``: segments of the current line (one direction per segment).
- ``('target', 'seg', 'target')``: segments of the target line at t+dt.

Graph-level attributes
- ``cell`` (1, 3, 3): periodic cell rows (Angstrom) for minimum-image distances;
- ``pbc`` (1, 3) bool; ``dt_ps`` (1,); ``temperature_k`` (1,); ``angle_deg`` (1,);
  ``stress_gpa`` (1,); ``traj_id`` str; ``frame_index`` int.
"""

NODE = "node"
GP = "gp"
TARGET = "target"
GP_TO_NODE = (GP, "to", NODE)
NODE_TO_GP = (NODE, "to", GP)
NODE_SEG = (NODE, "seg", NODE)
TARGET_SEG = (TARGET, "seg", TARGET)
