"""MLflow "models from code" entry of the registered law: MLflow runs this file to build the pyfunc model."""

import mlflow.models

from dislomob.registry.pyfunc import MobilityLawModel

mlflow.models.set_model(MobilityLawModel())
