"""Composition root: settings, the CLI and the pipeline that wires the layers together."""

__version__ = "0.1.0"
