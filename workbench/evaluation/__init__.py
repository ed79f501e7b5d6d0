"""Evaluation: metrics, side-by-side generation against the ground truth, and the result files."""
