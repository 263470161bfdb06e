"""Identity figures: MRZ reads on the synthetic set by difficulty, face distances, seconds.

    .venv/bin/python bench/identity.py [--per-difficulty N]

MRZ: each synthetic page (tests/fixtures/identity/synth.py, OCR-B) is read by `MrzReader`
(pass 1 + de-skewed pass 2 + structural repair) and, as the baseline in the same run, by the bare
engine (pass 1 lines straight into `parse_mrz`, no repair). "exact" = accepted and every line
equals the truth; "false accept" = accepted but any line differs; the rest are refused with a
reason. Faces: distances on the public-domain portraits in tests/fixtures/identity/faces.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fixtures.identity.synth import Difficulty, make_sample  # noqa: E402

from clearance.errors import MrzError  # noqa: E402
from clearance.identity.mrz import parse_mrz  # noqa: E402
from clearance.identity.ocr import MrzReader, _mrz_group  # noqa: E402

TODAY = date(2026, 1, 1)


def bench_mrz(per_difficulty: int) -> None:
    reader = MrzReader()
    print(f"MRZ reads, {per_difficulty} synthetic pages per difficulty")
    print(
        f"{'difficulty':<10} {'pipeline exact':>15} {'false acc':>9} {'s/page':>7}   "
        f"{'baseline exact':>15} {'false acc':>9}"
    )
    for difficulty in Difficulty:
        ours: Counter[str] = Counter()
        base: Counter[str] = Counter()
        seconds = 0.0
        for i in range(per_difficulty):
            sample = make_sample(10_000 + i, difficulty, TODAY)
            start = time.perf_counter()
            try:
                read = reader.read(sample.image, today=TODAY)
                ours["exact" if read.result.lines == sample.lines else "false"] += 1
            except MrzError as error:
                ours[error.code] += 1
            seconds += time.perf_counter() - start
            group = _mrz_group(reader._ocr(sample.image))
            try:
                lines = parse_mrz([g.text for g in group], today=TODAY).lines
                base["exact" if lines == sample.lines else "false"] += 1
            except MrzError as error:
                base[error.code] += 1
        n = per_difficulty
        print(
            f"{difficulty.value:<10} {ours['exact']:>8}/{n} {100 * ours['exact'] / n:>4.0f}%"
            f" {ours['false']:>9} {seconds / n:>7.2f}   {base['exact']:>8}/{n}"
            f" {100 * base['exact'] / n:>4.0f}% {base['false']:>9}"
        )
        refused = {k: v for k, v in ours.items() if k not in ("exact", "false")}
        if refused:
            print(f"{'':<10} refused: {refused}")


def bench_faces() -> None:
    import numpy as np
    from PIL import Image, ImageEnhance, ImageOps

    from clearance.identity.face import distance, single_face
    from clearance.identity.liveness import check_liveness

    faces = ROOT / "tests" / "fixtures" / "identity" / "faces"
    collins = Image.open(faces / "collins.jpg").convert("RGB")
    hopper = Image.open(faces / "hopper.jpg").convert("RGB")
    variants = {
        "mirrored": ImageOps.mirror(collins),
        "x1.5 brighter": ImageEnhance.Brightness(collins.resize((360, 360))).enhance(1.25),
        "x0.5": collins.resize((120, 120)),
        "darker": ImageEnhance.Brightness(collins).enhance(0.6),
    }
    start = time.perf_counter()
    base = single_face(np.asarray(collins), role="selfie").encoding
    one = time.perf_counter() - start
    print("\nFace distances (dlib ResNet; match < 0.50, review < 0.60)")
    for name, image in variants.items():
        other = single_face(np.asarray(image), role="selfie").encoding
        print(f"  same person, Collins vs {name:<14} {distance(base, other):.3f}")
    other = single_face(np.asarray(hopper), role="selfie").encoding
    print(f"  different people, Collins vs Hopper      {distance(base, other):.3f}")
    print(f"  one face found + embedded: {one:.2f} s")
    frames = [np.asarray(collins)] * 8
    start = time.perf_counter()
    check_liveness(frames)
    print(f"  liveness over 8 frames (240 px): {time.perf_counter() - start:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-difficulty", type=int, default=20)
    args = parser.parse_args()
    bench_faces()
    bench_mrz(args.per_difficulty)


if __name__ == "__main__":
    main()
