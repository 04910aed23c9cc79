"""microgesture: micro-gesture recognition and behaviour-based emotion prediction."""

__version__ = "0.3.0"
