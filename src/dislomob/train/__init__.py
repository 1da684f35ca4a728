"""Training of the PI-GNN ensemble: data module, Lightning module, MLflow logging, the train stage."""
