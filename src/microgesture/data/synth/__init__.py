"""An embedded synthetic micro-gesture dataset: drawn people, skeletons and labels, no downloads.

`generate_dataset(out_dir)` writes untrimmed press-conference-like videos in the exact MiGA
per-video layout (`<vid>/<vid>_label.csv`, `<vid>_light_hand.csv`, `<vid>.mp4`, and the face
track `<vid>_face.mp4` + `<vid>_face.csv`: data/formats/facetrack.py) plus
`videos.csv` (video_id, subject_id, win/lose) and `synth.json` (generator, seed, frame size,
fps, ...). Every iMiGUE class has a motion program that follows its name (`motions.py`);
subjects differ in body, placement, handedness, tempo, detector noise and colours, so a
cross-subject split is a real domain shift; the video's emotion shifts both the gestures and a
noisy facial cue.

Class frequencies: iMiGUE's shares tempered by a square root and floored at 1.2 %, reweighted
by the video's emotion, with a coverage repair so that every class occurs a few times (the rule
in full is in `schedule.py`).

Modules: `body` (subjects, 2-D kinematics), `motions` (idle motion and the 32 programs),
`render` (frames), `face` (the 112x112 face track), `schedule` (videos, emotions, class
sequences), `generate` (timelines, detector noise, files).
"""

from microgesture.data.synth.generate import SynthSummary, generate_dataset

__all__ = ["SynthSummary", "generate_dataset"]
