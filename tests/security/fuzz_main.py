"""Run one fuzz target under atheris (libFuzzer), coverage-guided over the clearance package.

    .venv/bin/python -m tests.security.fuzz_main TARGET [libFuzzer flags, e.g. -runs=5000]

Seeds come from `fuzz_targets.seeds(TARGET)`, written to a scratch corpus directory. A
`ClearanceError` is a clean refusal; any other exception is a crash: libFuzzer prints the
traceback, saves the input as `crash-<sha1>` in `-artifact_prefix` and exits non-zero.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["clearance"]):
    from tests.security import fuzz_targets


def main(argv: list[str]) -> None:
    name, flags = argv[1], argv[2:]
    if name not in {*fuzz_targets.TARGETS, fuzz_targets.ALL, fuzz_targets.BASELINE}:
        raise SystemExit(f"unknown target {name!r}; one of {', '.join(fuzz_targets.TARGETS)}")
    corpus = Path(tempfile.mkdtemp(prefix=f"fuzz-{name}-"))
    for i, seed in enumerate(fuzz_targets.seeds(name)):
        (corpus / f"seed-{i}").write_bytes(seed)

    def one_input(data: bytes) -> None:
        fuzz_targets.run(name, data)

    atheris.Setup([argv[0], *flags, str(corpus)], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
