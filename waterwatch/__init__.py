"""Composition root: settings, the CLI and the pipeline that wires the layers together."""

import os

# MLflow 3 sends usage telemetry to an outside address unless told not to: a bureau's registry stays on its own
# network (MLFLOW_DISABLE_TELEMETRY=false allows it). Every entry point (CLI, service, notebooks) imports this
# package before training imports mlflow.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

__version__ = "0.1.0"
