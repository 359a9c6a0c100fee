"""Layer 2: deterministic checks, notifications, anomaly detectors, the risk model and its reasons."""

from models.risk import RiskModel

__all__ = ["RiskModel"]
