"""The document reader: uploaded bytes to an image (`images.py`), and the MRZ read from a photo
(`ocr.py`: the lines found by `band.py`, read cell by cell by `pitch.py`, the name line agreed by
`consensus.py`, structural repair by `repair.py`), then parsed by `identity.mrz`.

Only image loading is re-exported here: `ocr` and `band` load OpenCV and the ONNX models, which
the serving process must never import, so they are imported by their full path where a
document is read (the worker, lazily)."""

from clearance.identity.document.images import (
    ImageFormat,
    ImageLimits,
    LoadedImage,
    load_image,
    sniff,
)

__all__ = ["ImageFormat", "ImageLimits", "LoadedImage", "load_image", "sniff"]
