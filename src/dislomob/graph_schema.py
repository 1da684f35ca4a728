"""The contract between featurize (producer) and the model/training code (consumer).

One dislocation snapshot at time t becomes one PyG ``HeteroData`` graph. Lengths are in
Angstrom, times in ps, temperatures in K, stresses in GPa.

Vertex types
- ``node``: resampled line nodes.
    pos    (n_node, 3)              Cartesian position at t, Angstrom (float64 kept as float32 ok)
    frame  (n_node, 3, 3)           rows = local orthonormal frame (b_hat, n_hat, s_hat) in Cartesian
    y      (n_node, 3)              target displacement to the line at t+dt, in the local frame, Angstrom
    temperature_k (n_node,)         temperature of the run, K
- ``gp``: Gauss points on segments.
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

Added by featurize (dislomob.features):
- ``gp.stress_gpa`` (n_gp, 3, 3): Cartesian stress at the GP (dislocations + applied), GPa;
  ``gp.segment`` (n_gp,): index of the GP's segment (= index of its start node).
- ``(node, seg, node).shift`` and ``(target, seg, target).shift`` (n_edges, 3): lattice shift in
  Angstrom to add to the end node's position (the segment closing a periodic line crosses the cell).
- ``(gp, to, node)``: each GP to both end nodes of its segment; ``(node, to, gp)`` is its reverse.
- ``node.frame`` rows are the line's (b_hat, n_hat, s_hat): b_hat = Burgers vector (Hirth-Lothe
  convention), n_hat = slip plane normal, s_hat = b_hat x n_hat; y_cart = frame^T y.
- No stored features: the model computes its symmetry-invariant inputs from ``gp.stress_gpa``,
  ``node.frame``, the segments and the temperature (``dislomob.features.invariants.graph_features``;
  columns ``GP_FEATURE_NAMES`` / ``NODE_FEATURE_NAMES``).
- ``n_gauss`` int; ``time_ps`` float. Files: ``dislomob.features.graphs.load_graphs(path)``.
"""

NODE = "node"
GP = "gp"
TARGET = "target"
GP_TO_NODE = (GP, "to", NODE)
NODE_TO_GP = (NODE, "to", GP)
NODE_SEG = (NODE, "seg", NODE)
TARGET_SEG = (TARGET, "seg", TARGET)
