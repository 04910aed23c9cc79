"""Face tracks of real videos: `detect` (MediaPipe / Haar), `track` (the subject over time and its
policies), `crop` (aligned 112x112 crops; face boxes from skeleton joints), `extract` (whole
videos and folders, with a manifest). The files they write: data/formats/facetrack.py.
"""

from microgesture.data.faces.extract import FaceSettings, FaceTrackResult, extract_faces, extract_video

__all__ = ["FaceSettings", "FaceTrackResult", "extract_faces", "extract_video"]
