"""Layer 1: department tables -> validated, linked tables -> monthly enterprise profiles."""
