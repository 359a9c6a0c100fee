"""Layer 4: scores, leads, alerts, verdicts: the service and its store."""
