"""The self-contained HTML report of `microgesture analyze`: one file, images inside as base64.

It shows the timeline, one key frame per segment (the segment's middle frame with the skeleton
and the followed face drawn on it), the class names, scores and times, the emotion estimate with
its confidence, and what was run (extractor settings, model, decoding) with any notes.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from microgesture.data.pose.draw import draw_skeleton
from microgesture.data.video import read_frames
from microgesture.domain.layouts import JointLayout
from microgesture.eval.segments import Segment
from microgesture.utils.io import write_text

KEY_FRAME_WIDTH = 360


def _jpeg_base64(rgb: np.ndarray, quality: int = 85) -> str:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        return ""
    return base64.b64encode(buf.tobytes()).decode("ascii")


def key_frames(video: str | Path, segments: list[Segment], joints: np.ndarray, faces: np.ndarray,
               layout: JointLayout) -> list[str]:
    """A base64 JPEG of each segment's middle frame with the skeleton drawn (one decode pass)."""
    if not segments:
        return []
    mids = [min((s.start + s.end) // 2, len(joints) - 1) for s in segments]
    images = read_frames(video, mids)
    out = []
    for frame, t in zip(images, mids):
        # scale to the report's width first, then draw: lines stay thin and sharp at any video size
        h, w = frame.shape[:2]
        factor = KEY_FRAME_WIDTH / w
        frame = cv2.resize(frame, (KEY_FRAME_WIDTH, max(1, round(h * factor))),
                           interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR)
        points = joints[t].copy()
        points[:, :2] *= factor
        face = faces[t].copy() if t < len(faces) else None
        if face is not None:
            face[:4] *= factor
        out.append(_jpeg_base64(draw_skeleton(frame, points, layout, face=face)))
    return out


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
table { border-collapse: collapse; width: 100%; } td, th { border-bottom: 1px solid #ddd; padding: 4px 8px;
text-align: left; vertical-align: middle; font-size: 0.92em; } img.key { max-width: 360px; }
.note { background: #fff6dd; padding: 6px 10px; border-left: 4px solid #e0b000; margin: 6px 0; }
.small { color: #666; font-size: 0.85em; } .emotion { font-size: 1.1em; }
"""


def _emotion_html(emotion: dict[str, Any] | None) -> str:
    if emotion is None:
        return "<p class='small'>No emotion model was given (<code>--emotion-checkpoint</code>), or nobody was seen.</p>"
    return (f"<p class='emotion'>Estimate: <b>{html.escape(emotion['label'])}</b> with confidence "
            f"<b>{emotion['confidence']:.2f}</b> (probability of 'win' {emotion['prob_win']:.2f}, mean over "
            f"{emotion['windows']} windows).</p><p class='small'>iMiGUE's video label says whether the player won "
            "or lost the match: a proxy for a positive or negative state, learnt from behaviour; it is not a "
            "measured emotion.</p>")


def _segments_html(rows: list[dict[str, Any]], images: list[str]) -> str:
    if not rows:
        return "<p>No micro-gesture segment was detected.</p>"
    lines = ["<table><tr><th>#</th><th>class</th><th>time (s)</th><th>frames</th><th>score</th><th>key frame</th></tr>"]
    for k, row in enumerate(rows):
        image = f"<img class='key' src='data:image/jpeg;base64,{images[k]}'>" if k < len(images) and images[k] else ""
        lines.append(
            f"<tr><td>{k + 1}</td><td>{html.escape(row['name'])}</td><td>{row['start_s']:.2f} – {row['end_s']:.2f}</td>"
            f"<td>{row['start']} – {row['end']}</td><td>{row['score']:.2f}</td><td>{image}</td></tr>")
    lines.append("</table>")
    if len(images) < len(rows):
        lines.append(f"<p class='small'>Key frames for the first {len(images)} segments.</p>")
    return "\n".join(lines)


def write_report(path: str | Path, summary: dict[str, Any], timeline_png: str | Path, images: list[str]) -> Path:
    """Write the report (module doc) atomically."""
    video = summary["video"]
    timeline = base64.b64encode(Path(timeline_png).read_bytes()).decode("ascii")
    notes = "".join(f"<div class='note'>{html.escape(n)}</div>" for n in summary.get("notes", []))
    model = summary["model"]
    ext = summary["extraction"]
    name = html.escape(Path(video["path"]).name)
    body = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Micro-gestures in {name}</title><style>{_STYLE}</style></head>
<body>
<h1>Micro-gestures in {name}</h1>
<p class="small">{video['frames']} frames, {video['fps']:.2f} frames/s, {video['width']}x{video['height']};
a person in {summary['person_frames']} frames.</p>
{notes}
<h2>Timeline</h2>
<img src="data:image/png;base64,{timeline}" style="max-width:100%">
<h2>Segments ({len(summary['segments'])})</h2>
{_segments_html(summary['segments'], images)}
<h2>Emotion</h2>
{_emotion_html(summary.get('emotion'))}
<h2>How this was made</h2>
<p class="small">Pose: {html.escape(str(ext['extractor']))}; options {html.escape(str(ext['options']))}.<br>
MG model: {html.escape(str(model['checkpoint']))}, windows of {model['window_frames_at_25fps']} frames at 25 frames/s
every {model['window_stride_at_25fps']}; background class: {html.escape(str(model['background_class']))}.<br>
Decoding: {html.escape(str(summary['decoding']))}.<br>
Skeleton colours: the person's right in orange, left in blue; the followed face in green.</p>
</body></html>
"""
    write_text(path, body)
    return Path(path)
