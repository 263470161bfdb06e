"""face_recognition (dlib), imported once with its model package's import-time warning muted.

face_recognition_models finds its model files through `pkg_resources` (hence setuptools<81 in
pyproject.toml), which warns that it is deprecated every time it is imported; the models are
read from the installed package either way. Without this, the warning (an error under the test
suite's `filterwarnings = error`) makes face_recognition print an install hint and `quit()`.
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
    import face_recognition

__all__ = ["face_recognition"]
