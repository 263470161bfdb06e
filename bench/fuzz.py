"""Hostile-input figures (issue 7, item 4): fuzzing runs far longer than CI's.

    .venv/bin/python bench/fuzz.py [--seconds 120] [--targets mrz,csl] [--examples 300]
                                   [--skip-parsers] [--skip-api] [--skip-images]

1. atheris, `--seconds` per parser target: executions, executions/s, crashes (a crash restarts
   the fuzzer for the time left, so distinct crashes are counted). Baseline, same run: the
   harness alone (`baseline`: decoding the input and nothing else).
2. schemathesis against a running gateway on SQLite, `--examples` per operation of the OpenAPI
   document: requests, statuses, server errors and schema violations.
3. images: time and peak memory of every hostile upload in tests/security/hostile_images.py,
   beside the baseline of loading a legitimate 640x480 JPEG, and what an accepted pixel flood
   (a tiny PNG of many black pixels, under the pixel limit) costs.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.security import fuzz_targets  # noqa: E402
from tests.security.api_fuzz import demo_gateway, fuzz_gateway  # noqa: E402
from tests.security.hostile_images import REFUSED, photo, png_bomb  # noqa: E402
from tests.security.measure import MB, measure  # noqa: E402

from clearance.errors import ClearanceError  # noqa: E402
from clearance.identity.document import load_image  # noqa: E402

_EXECUTED = re.compile(r"stat::number_of_executed_units:\s*(\d+)")
_CRASH_FILE = re.compile(r"Test unit written to (\S+)")


def _atheris_once(target: str, seconds: int, artifacts: Path) -> tuple[int, str | None]:
    """(executions, crash summary or None) of one fuzzer process."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.security.fuzz_main",
            target,
            f"-max_total_time={seconds}",
            "-print_final_stats=1",
            f"-artifact_prefix={artifacts}/",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=seconds + 300,
    )
    executed = sum(int(n) for n in _EXECUTED.findall(done.stderr))
    if done.returncode == 0:
        return executed, None
    lines = [line for line in done.stderr.splitlines() if re.match(r"^\w+(Error|Exception)", line)]
    saved = _CRASH_FILE.search(done.stderr)
    summary = (lines[-1] if lines else f"exit {done.returncode}") + (
        f" ({saved.group(1)})" if saved else ""
    )
    return executed, summary


def fuzz_parsers(targets: list[str], seconds: int) -> None:
    print(f"\n== atheris: {seconds} s per target ==")
    print(f"{'target':<18}{'executions':>12}{'exec/s':>10}{'crashes':>9}")
    artifacts = Path(tempfile.mkdtemp(prefix="clearance-fuzz-"))
    for target in targets:
        deadline = time.monotonic() + seconds
        executions, crashes = 0, []
        while (left := int(deadline - time.monotonic())) > 0:
            started = time.monotonic()
            n, crash = _atheris_once(target, left, artifacts)
            executions += n
            if crash is None:
                break
            crashes.append(crash)
            if time.monotonic() - started < 1:  # crashes at once: more runs find nothing new
                break
        rate = executions / seconds
        print(f"{target:<18}{executions:>12,}{rate:>10,.0f}{len(crashes):>9}")
        for crash in dict.fromkeys(crashes):
            print(f"    crash: {crash}")
    print(f"crash inputs, if any, under {artifacts}")


def fuzz_api(examples: int) -> None:
    print(f"\n== schemathesis: {examples} examples per operation, gateway on SQLite ==")
    with tempfile.TemporaryDirectory() as tmp, demo_gateway(Path(tmp) / "instance") as running:
        url, keys, admin = running
        started = time.perf_counter()
        report = fuzz_gateway(url, keys, examples=examples, derandomize=False, admin=admin)
        elapsed = time.perf_counter() - started
    statuses = ", ".join(f"{code}: {n}" for code, n in sorted(report.statuses.items()))
    print(f"requests {report.requests:,} in {elapsed:.1f} s ({report.requests / elapsed:.0f}/s)")
    print(f"statuses {statuses}")
    print(f"operations failing (server error or schema violation): {len(report.failures)}")
    for operation, failure in report.failures.items():
        print(f"  {operation}: {failure.splitlines()[0]}")
        for line in failure.splitlines()[1:]:
            if line.strip().startswith("- "):
                print(f"      {line.strip()}")


def _image_row(name: str, data: bytes) -> None:
    cost = measure(lambda: load_image(data), (ClearanceError,))
    outcome = cost.outcome
    verdict = (
        f"{type(outcome).__name__} {outcome.status}"
        if isinstance(outcome, ClearanceError)
        else "accepted"
    )
    print(
        f"{name:<30}{len(data):>10,}{cost.seconds * 1000:>10.1f}{cost.peak_bytes / MB:>9.1f}"
        f"  {verdict}"
    )


def hostile_images() -> None:
    print("\n== images: one load_image call each (limits: < 1 s, < 100 MB, a 4xx) ==")
    print(f"{'upload':<30}{'bytes':>10}{'ms':>10}{'peak MB':>9}  outcome")
    _image_row("(warm-up)", photo("JPEG"))
    _image_row("baseline: 640x480 JPEG", photo("JPEG", 640, 480))
    for name in sorted(REFUSED):
        build, _ = REFUSED[name]
        _image_row(name, build())
    print("accepted pixel floods (black PNGs under the 40 MP limit):")
    for side in (3000, 4500, 6000):
        _image_row(f"png_flood_{side * side / 1e6:.0f}MP", png_bomb(side))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=120, help="per atheris target")
    parser.add_argument("--targets", default=",".join(["baseline", *sorted(fuzz_targets.TARGETS)]))
    parser.add_argument("--examples", type=int, default=300, help="per API operation")
    parser.add_argument("--skip-parsers", action="store_true")
    parser.add_argument("--skip-api", action="store_true")
    parser.add_argument("--skip-images", action="store_true")
    args = parser.parse_args()
    if not args.skip_images:
        hostile_images()
    if not args.skip_api:
        fuzz_api(args.examples)
    if not args.skip_parsers:
        fuzz_parsers(args.targets.split(","), args.seconds)


if __name__ == "__main__":
    main()
