"""Workflows that orchestrate training and evaluation: the demo, predictions, own-video analysis."""
