"""Pose, hand and face landmarks from a user's own video (MediaPipe), numpy out.

`people.py` chooses and follows the person to analyse, `mediapipe.py` wraps MediaPipe's models,
`extract.py` runs them over a video (frame stride, interpolation, timings), `draw.py` draws a
skeleton on a frame. The output format on disk is `data/formats/mediapipe.py`.
"""
