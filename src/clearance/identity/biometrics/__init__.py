"""Biometrics: face match between the document portrait and the selfie (`face.py`), and active
liveness over the captured frames (`liveness.py`), both on dlib through face_recognition
(`facelib.py`).

Nothing is re-exported here: every module of this package loads dlib and OpenCV, which the
serving process must never import, so they are imported by their full path where a document is
verified (the worker, lazily)."""
