"""Training stage."""
