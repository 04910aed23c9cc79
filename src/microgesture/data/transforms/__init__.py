"""Sample transforms, one idea each: temporal sampling, skeleton geometry, skeleton features, RGB,
heatmap volumes.

The contract (a sample dict in, the same dict with keys added out, randomness from the caller's
generator) is in core.py; the standard compositions are in pipelines.py.
"""

from microgesture.data.transforms.core import Compose, Sample, Transform
from microgesture.data.transforms.features import STREAMS, FormatStream
from microgesture.data.transforms.geometry import Normalize, RandomAffine, RandomFlip, SelectLayout
from microgesture.data.transforms.heatmap import HeatmapInput, HeatmapVolume, PersonBox, RandomBoxCrop
from microgesture.data.transforms.pipelines import build_pipeline, skeleton_pipeline
from microgesture.data.transforms.sampling import UniformSample

__all__ = ["STREAMS", "Compose", "FormatStream", "HeatmapInput", "HeatmapVolume", "Normalize", "PersonBox",
           "RandomAffine", "RandomBoxCrop", "RandomFlip", "Sample", "SelectLayout", "Transform", "UniformSample",
           "build_pipeline", "skeleton_pipeline"]
