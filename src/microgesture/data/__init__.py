"""Data formats, importers, joint layouts, synthetic data, video I/O and datasets."""
