"""Class names: iMiGUE's 32 micro-gesture classes and emotion labels (iMiGUE, Liu et al., CVPR 2021),
SMG's 17 micro-gesture classes."""

from __future__ import annotations

# 0-based index = iMiGUE C-number - 1; the raw class "99" (illustrative) is index 31.
IMIGUE_CLASSES: tuple[str, ...] = (
    "turtle neck",
    "bulging face / deep breath",
    "touching hat",
    "touching or scratching head",
    "touching or scratching forehead",
    "covering face",
    "rubbing eyes",
    "touching or scratching facial parts",
    "touching ears",
    "biting nails",
    "touching jaw",
    "touching or scratching neck",
    "playing or adjusting hair",
    "buckling button / pulling collar / adjusting tie",
    "touching or covering suprasternal notch",
    "scratching back",
    "folding arms",
    "dusting off clothes",
    "putting arms behind body",
    "moving torso",
    "sitting straightly",
    "scratching or touching arms",
    "rubbing or holding hands",
    "crossing fingers",
    "minaret gesture",
    "playing or manipulating objects",
    "holding back arms",
    "head up",
    "pressing lips",
    "arms akimbo",
    "shaking shoulders",
    "illustrative body language",
)
NUM_CLASSES = len(IMIGUE_CLASSES)

# Share of each class among iMiGUE's 18,499 clips, in percent (the iMiGUE paper). The illustrative
# class is "about 31%": we use the remainder so the shares sum to 100.
_KNOWN_SHARES = (
    0.08, 2.78, 0.24, 1.47, 0.49, 0.17, 0.49, 6.13, 0.71, 0.03, 2.45, 1.07, 0.76, 0.38, 0.24,
    0.16, 2.19, 0.71, 0.01, 6.58, 1.23, 2.85, 5.60, 4.80, 0.11, 2.32, 0.54, 0.54, 8.36, 0.04,
    15.57,
)
IMIGUE_CLASS_SHARES: tuple[float, ...] = _KNOWN_SHARES + (round(100.0 - sum(_KNOWN_SHARES), 2),)

ILLUSTRATIVE_RAW = 99

# Video-level emotion: win is the positive class.
EMOTIONS: tuple[str, ...] = ("lose", "win")
EMOTION_UNKNOWN = -1


def class_index_from_raw(raw: int) -> int:
    """Map iMiGUE's raw class code (1..31, or 99 for illustrative) to a 0-based index.

    Raises ValueError for any other code; callers wrap it with file and line context.
    """
    if raw == ILLUSTRATIVE_RAW:
        return NUM_CLASSES - 1
    if 1 <= raw <= NUM_CLASSES - 1:
        return raw - 1
    raise ValueError(f"class code {raw} is not an iMiGUE class (expected 1..31 or 99)")


def raw_from_class_index(index: int) -> int:
    """Inverse of `class_index_from_raw`."""
    if not 0 <= index < NUM_CLASSES:
        raise ValueError(f"class index {index} is outside 0..{NUM_CLASSES - 1}")
    return ILLUSTRATIVE_RAW if index == NUM_CLASSES - 1 else index + 1


def emotion_index(name: str) -> int:
    """'win'/'lose' (any case, also 'positive'/'negative', '1'/'0') to 1/0."""
    key = str(name).strip().lower()
    if key in ("win", "positive", "1"):
        return 1
    if key in ("lose", "loss", "negative", "0"):
        return 0
    raise ValueError(f"emotion {name!r} is not one of win/lose")


# SMG ("SMG: A Micro-gesture Dataset Towards Spontaneous Body Gestures for Emotional Stress State
# Analysis", IJCV 2023): 0-based index = the label in SMG's `_finelabels.csv` files (1..17) - 1.
SMG_CLASSES: tuple[str, ...] = (
    "Turtling neck and shoulder",
    "Rubbing eyes and forehead",
    "Folding arms",
    "Touching or covering suprasternal notch",
    "Moving legs",
    "Touching or scratching neck",
    "Folding arms behind body",
    "Rubbing hands and crossing finger",
    "Arms akimbo",
    "Crossing legs",
    "Scratching some part of body",
    "Scratching or touching facial parts other than eyes",
    "Playing or adjusting hair",
    "Holding arms",
    "Pulling shirt collar",
    "Playing with jewelry, and manipulating other objects",
    "Illustrative hand gestures",
)
