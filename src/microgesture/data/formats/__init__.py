"""Files in and out: the annotation format, the dataset layouts we import, validation. No torch."""
