"""Layer 2: deterministic checks, notifications, anomaly detectors, the risk model and its reasons."""

__all__ = ["RiskModel"]


def __getattr__(name: str):
    # the risk model (LightGBM, scikit-learn) is imported when asked for: the checks run without it
    if name == "RiskModel":
        from models.risk import RiskModel

        return RiskModel
    raise AttributeError(f"module 'models' has no attribute {name!r}")
