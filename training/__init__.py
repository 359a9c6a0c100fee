"""Layer 3: labels, temporal backtests, tuning, MLflow registry and joblib artifacts."""
