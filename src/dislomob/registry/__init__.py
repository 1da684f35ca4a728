"""The MLflow Model Registry side of the law: which ensemble is registered (source), how it is packaged as a
pyfunc model (law_config, pyfunc, model_code), where it came from (provenance), whether it becomes the
champion (champion) and the ``register`` stage that ties them together (stage)."""
