"""Gateway benchmark: the same load direct to a fake upstream, through a bare pass-through proxy
(the ceiling for a Python gateway) and through Clearance, in one run.

The bare proxy runs twice: on aiohttp (`pass-through`, the baseline every goal compares with)
and on Clearance's own upstream client (`pass-through h1`, Clearance minus its checks: the gap
between the two is what the checks alone cost).

    .venv/bin/python bench/gateway.py [--duration 10] [--warmup 2] [--api openai|anthropic]

Needs `wrk` (Debian package `wrk`). The upstream is the demo upstream (raw ASGI, no chunk delay)
under uvicorn with uvloop + httptools. Clearance runs as `clearance serve` with one worker on a
fresh instance: SQLite in WAL mode with an fsync per commit, so each request waits for its audit
entry to be durable. wrk, the upstream and this script share CPU 0; the proxy under test gets
CPU 1 to itself (taskset). For each of non-streaming and streaming at concurrency 1 and 32: a
warm-up, then `--duration` seconds; prints req/s, p50, p99 and the latency added over direct. wrk
times whole responses, so streaming first-byte latency is measured apart, at concurrency 1, by a
raw-socket client.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from statistics import quantiles

import uvicorn

from clearance.demo.upstream import demo_upstream_app

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
LOAD_CPU, PROXY_CPU = 0, 1
MODEL = "fable-4"
PROMPT = [{"role": "user", "content": "Summarise the export-control directive in one line."}]
LUA = """wrk.method = "POST"
wrk.body = [==[{body}]==]
{headers}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRKJSON {{\\"requests\\": %d, \\"duration_us\\": %d, \\"p50_us\\": %d, "
    .. "\\"p99_us\\": %d, \\"errors\\": %d, \\"non2xx\\": %d}}\\n", summary.requests,
    summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
"""


@dataclass(frozen=True, slots=True)
class Load:
    api: str
    stream: bool
    key: str = "bench-direct"

    @property
    def path(self) -> str:
        return "/v1/messages" if self.api == "anthropic" else "/v1/chat/completions"

    @property
    def body(self) -> bytes:
        fields: dict[str, object] = {"model": MODEL, "messages": PROMPT, "max_tokens": 64}
        return json.dumps({**fields, "stream": True} if self.stream else fields).encode()

    @property
    def headers(self) -> dict[str, str]:
        if self.api == "anthropic":
            return {
                "content-type": "application/json",
                "x-api-key": self.key,
                "anthropic-version": "2023-06-01",
            }
        return {"content-type": "application/json", "authorization": f"Bearer {self.key}"}


@dataclass(frozen=True, slots=True)
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    failures: int


# --- processes -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def on_proxy_cpu(argv: list[str]) -> list[str]:
    pinned = shutil.which("taskset") and (os.cpu_count() or 1) > 1
    return ["taskset", "-c", str(PROXY_CPU), *argv] if pinned else argv


@contextmanager
def process(
    argv: list[str], ready_url: str, env: Mapping[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a server process, wait until `ready_url` answers 200, stop it on exit."""
    # stderr to a file, not a pipe: a long run's log must never fill a pipe and stall the server.
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log, env=env)
    try:
        deadline = time.monotonic() + 60
        while not _answers(ready_url):
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                tail = log.read()[-2000:].decode(errors="replace")
                raise SystemExit(f"{argv[0]} did not start: {tail}")
            time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _cpu_seconds(root: int) -> float:
    """CPU time (user + system) of `root` and every process below it, from /proc (proc(5))."""
    ticks = os.sysconf("SC_CLK_TCK")
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:  # the fields after the command name: [1] ppid, [11] utime, [12] stime
                stats[int(entry.name)] = (entry / "stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
    tree, total, grew = {root}, 0.0, True
    while grew:
        grew = False
        for pid, fields in stats.items():
            if pid not in tree and int(fields[1]) in tree:
                tree.add(pid)
                grew = True
    for pid in tree:
        if pid in stats:
            total += (int(stats[pid][11]) + int(stats[pid][12])) / ticks
    return total


def settle(root: int, *, quiet: float = 0.05, timeout: float = 120.0) -> float:
    """Wait until `root`'s process tree uses under `quiet` of a core for a second (its start-up
    is over); returns the seconds waited."""
    start = time.monotonic()
    before = _cpu_seconds(root)
    while time.monotonic() - start < timeout:
        time.sleep(1.0)
        now = _cpu_seconds(root)
        if now - before < quiet:
            break
        before = now
    return time.monotonic() - start


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def clearance_instance(
    directory: Path,
    upstream: str,
    *,
    command: Sequence[str] = (str(BIN / "clearance"),),
    env: Mapping[str, str] | None = None,
    gateway: str = "",
) -> tuple[Path, str]:
    """A fresh instance through the real CLI (`command`, run with `env`); returns its config
    file and an API key. `gateway`: TOML lines set in [gateway], added where the template
    lacks the key (an older release's)."""
    config = directory / "clearance.toml"

    def cli(*args: str) -> str:
        argv = [*command, *args]
        if args[0] != "init":
            argv += ["--config", str(config)]
        done = subprocess.run(
            argv, capture_output=True, text=True, check=False, timeout=120, env=env
        )
        if done.returncode:
            raise SystemExit(f"clearance {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return done.stdout

    who = "bench@example.test"
    cli("init", str(directory))
    database = f"sqlite:///{directory / 'clearance.db'}"
    text = config.read_text().replace(
        'database_url = "sqlite:///clearance.db"', f'database_url = "{database}"'
    )
    for line in gateway.splitlines():
        key = line.partition("=")[0].strip()
        text, found = re.subn(rf"(?m)^{key} = .*$", line, text)
        if not found:
            text = text.replace("[gateway]\n", f"[gateway]\n{line}\n", 1)
    config.write_text(text)
    cli("upstreams", "add", "demo", "--kind", "openai", "--base-url", upstream + "/v1")
    cli("models", "add", MODEL, "--upstream", "demo", "--training-compute", "1e24")
    cli("users", "add", who)
    cli(
        "identity",
        "attest",
        who,
        "--nationality",
        "US",
        "--us-person",
        "citizen",
        "--method",
        "in_person",
    )
    key = cli("keys", "create", who).strip().splitlines()[-1].strip()
    return config, key


# --- measuring -------------------------------------------------------------------------------


def wrk(
    url: str, load: Load, connections: int, seconds: float, script: Path, lua: str = ""
) -> Result:
    """`lua`: more of wrk's script, e.g. a `request` function that varies the key per request."""
    headers = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in load.headers.items())
    script.write_text(LUA.format(body=load.body.decode(), headers=headers) + lua)
    argv = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "5s",
        "-s",
        str(script),
        url + load.path,
    ]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=seconds + 60)
    line = next(x for x in out.stdout.splitlines() if x.startswith("WRKJSON "))
    figures = json.loads(line.removeprefix("WRKJSON "))
    return Result(
        rps=figures["requests"] / (figures["duration_us"] / 1e6),
        p50_ms=figures["p50_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        failures=figures["errors"] + figures["non2xx"],
    )


def first_bytes(url: str, load: Load, requests: int) -> list[float]:
    """Milliseconds from sending a streaming request to its first `data:` bytes, one keep-alive
    connection, sequential requests."""
    host, port = url.removeprefix("http://").split(":")
    head = "".join(f"{k}: {v}\r\n" for k, v in load.headers.items())
    raw = (
        f"POST {load.path} HTTP/1.1\r\nhost: {host}\r\n{head}"
        f"content-length: {len(load.body)}\r\n\r\n"
    ).encode() + load.body
    samples = []
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(requests):
            start = time.perf_counter()
            sock.sendall(raw)
            buf, first = b"", 0.0
            while not buf.endswith(b"\r\n0\r\n\r\n"):  # the last chunk of a chunked body
                data = sock.recv(65536)
                if not data:
                    raise SystemExit(f"{url} closed the connection mid-response")
                buf += data
                if not first and b"data:" in buf:
                    first = time.perf_counter()
            if not buf.startswith(b"HTTP/1.1 200"):
                raise SystemExit(f"{url} answered {buf[:200]!r}")
            samples.append((first - start) * 1000)
    return samples


def check(url: str, load: Load) -> None:
    """One request before timing anything: a bench of error responses measures nothing."""
    request = urllib.request.Request(url + load.path, data=load.body, headers=load.headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            resp.read()
    except urllib.error.HTTPError as err:
        raise SystemExit(f"{url}{load.path} answered {err.code}: {err.read()[:500]!r}") from err


# --- the run ---------------------------------------------------------------------------------


def serve_upstream(port: int) -> None:
    uvicorn.run(
        demo_upstream_app(chunk_delay=0.0),
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        proxy_headers=False,  # as every server Clearance starts (serving.server_options)
        log_level="warning",
    )


def start_targets(
    stack: ExitStack, workdir: Path, skip_clearance: bool, workers: int = 1
) -> dict[str, str]:
    """The upstream, the pass-through baseline (aiohttp), the same on Clearance's own upstream
    client (h1), and Clearance; returns name -> base URL, and the Clearance key under the name
    "key"."""
    up_port, pass_port, gw_port = free_port(), free_port(), free_port()
    upstream = f"http://127.0.0.1:{up_port}"
    me = [sys.executable, str(Path(__file__).resolve())]
    stack.enter_context(process([*me, "--serve-upstream", str(up_port)], upstream + "/v1/models"))
    passthrough = f"http://127.0.0.1:{pass_port}"
    baseline = [
        sys.executable,
        str(HERE / "passthrough.py"),
        "--port",
        str(pass_port),
        "--upstream",
        upstream,
        "--workers",
        str(workers),
    ]
    # One worker gets CPU 1 to itself; several share both cores with wrk and the upstream.
    place = on_proxy_cpu if workers == 1 else (lambda argv: argv)
    stack.enter_context(process(place(baseline), passthrough + "/v1/models"))
    # The same bare proxy on Clearance's own upstream client: Clearance minus its checks, so the
    # run also shows what the checks alone cost.
    lean_port = free_port()
    lean = f"http://127.0.0.1:{lean_port}"
    lean_argv = [*baseline, "--client", "h1"]
    lean_argv[lean_argv.index("--port") + 1] = str(lean_port)
    stack.enter_context(process(place(lean_argv), lean + "/v1/models"))
    targets = {"direct": upstream, "pass-through": passthrough, "pass-through h1": lean}
    if not skip_clearance:
        config, key = clearance_instance(workdir / "instance", upstream)
        gateway = f"http://127.0.0.1:{gw_port}"
        serve = [
            str(BIN / "clearance"),
            "serve",
            "--config",
            str(config),
            "--port",
            str(gw_port),
            "--workers",
            str(workers),
        ]
        server = stack.enter_context(process(place(serve), gateway + "/healthz"))
        # `clearance serve` on SQLite starts a verification worker beside the HTTP worker; its
        # runner loads the OCR and face models once (seconds of CPU, on the pinned core): wait
        # for start-up to end, or the first cells measure it instead of the request path.
        settle(server.pid)
        targets["clearance"] = gateway
        targets["key"] = key
    return targets


Cells = dict[tuple[bool, int, str], Result]  # (streaming, connections, target) -> figures


def measure(targets: dict[str, str], args: argparse.Namespace, workdir: Path) -> Cells:
    names = [n for n in targets if n != "key"]
    cells: Cells = {}
    print(
        f"{'load':<12}{'conns':>6}  {'target':<16}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'+p50 ms':>9}{'+p99 ms':>9}{'failed':>8}"
    )
    for stream in args.loads:
        for conns in args.connections:
            direct: Result | None = None
            for name in names:
                load = Load(
                    args.api,
                    stream,
                    targets.get("key", "bench") if name == "clearance" else "bench-direct",
                )
                check(targets[name], load)
                wrk(targets[name], load, conns, args.warmup, workdir / "load.lua")
                before = audit_figures(targets[name]) if name == "clearance" else None
                got = wrk(targets[name], load, conns, args.duration, workdir / "load.lua")
                cells[stream, conns, name] = got
                direct = direct or got
                print(
                    f"{'streaming' if stream else 'non-stream':<12}{conns:>6}  {name:<16}"
                    f"{got.rps:>9,.0f}{got.p50_ms:>9.2f}{got.p99_ms:>9.2f}"
                    f"{got.p50_ms - direct.p50_ms:>+9.2f}{got.p99_ms - direct.p99_ms:>+9.2f}"
                    f"{got.failures:>8}",
                    flush=True,
                )
                if before is not None:
                    print("  " + audit_line(before, audit_figures(targets[name])), flush=True)
    if not args.ttfb_requests:
        return cells
    print(f"\nstreaming first byte, concurrency 1, {args.ttfb_requests} sequential requests:")
    base: float | None = None
    for name in names:
        load = Load(
            args.api, True, targets.get("key", "bench") if name == "clearance" else "bench-direct"
        )
        first_bytes(targets[name], load, max(1, args.ttfb_requests // 10))  # warm-up
        cuts = quantiles(first_bytes(targets[name], load, args.ttfb_requests), n=100)
        base = base if base is not None else cuts[49]
        print(
            f"  {name:<16} p50 {cuts[49]:.2f} ms  p99 {cuts[98]:.2f} ms  "
            f"(+{cuts[49] - base:.2f} ms p50 over direct)",
            flush=True,
        )
    return cells


def goals(cells: Cells) -> None:
    """Issue 13's table, from this run's cells: each goal compares Clearance with the bare
    pass-through (or direct) measured minutes apart on the same box."""

    def added(stream: bool, name: str) -> float | None:
        got, direct = cells.get((stream, 1, name)), cells.get((stream, 1, "direct"))
        return None if got is None or direct is None else got.p50_ms - direct.p50_ms

    rows: list[tuple[str, str, str, bool]] = []
    bare, ours = added(False, "pass-through"), added(False, "clearance")
    if bare is not None and ours is not None:
        rows.append(
            (
                "added p50 over direct, c=1, non-streaming",
                f"pass-through {bare:+.2f} ms, clearance {ours:+.2f} ms",
                "within 0.2 ms of the pass-through's",
                ours - bare <= 0.2,
            )
        )
    ours = added(True, "clearance")
    if ours is not None:
        rows.append(
            ("added p50 over direct, c=1, streaming", f"{ours:+.2f} ms", "<= 0.6 ms", ours <= 0.6)
        )
    high = max((c for _, c, _ in cells if c > 1), default=None)
    bare_hi, ours_hi = (
        cells.get((False, high or 0, "pass-through")),
        cells.get((False, high or 0, "clearance")),
    )
    if bare_hi is not None and ours_hi is not None:
        ratio = ours_hi.rps / bare_hi.rps
        rows.append(
            (
                f"req/s, c={high}",
                f"{bare_hi.rps:,.0f} / {ours_hi.rps:,.0f} ({ratio:.2f} of pass-through)",
                ">= 0.7 of the pass-through's",
                ratio >= 0.7,
            )
        )
        times = ours_hi.p99_ms / bare_hi.p99_ms
        rows.append(
            (
                f"p99, c={high}",
                f"{bare_hi.p99_ms:.1f} / {ours_hi.p99_ms:.1f} ms ({times:.1f}x pass-through)",
                "<= 2x the pass-through's",
                times <= 2.0,
            )
        )
    if not rows:
        return
    print("\nGoals (issue 13), this run:")
    for figure, got, goal, met in rows:
        print(f"  {'met ' if met else 'MISS'}  {figure:<42} {got:<44} goal {goal}")
    # Not a goal: the checks alone, Clearance against the bare proxy on the same upstream client.
    lean, ours = added(False, "pass-through h1"), added(False, "clearance")
    lean_hi = cells.get((False, high or 0, "pass-through h1"))
    if lean is not None and ours is not None:
        print(
            f"\nThe checks alone (Clearance against the pass-through on its own client, "
            f"clearance.net.h1): c=1 added p50 {ours - lean:+.2f} ms"
            + (
                f", c={high} req/s {ours_hi.rps / lean_hi.rps:.2f} of it"
                if lean_hi is not None and ours_hi is not None
                else ""
            )
        )


def audit_figures(url: str) -> dict[str, float]:
    """Clearance's own audit histograms from /metrics: the durable wait's cumulative buckets
    (`le` in seconds -> count) and the group commits' entry sum and count."""
    with urllib.request.urlopen(url + "/metrics", timeout=10) as resp:
        text = resp.read().decode()
    figures: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("clearance_audit_wait_seconds_bucket"):
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            figures["wait<=" + bound] = float(line.rsplit(" ", 1)[1])
        elif line.startswith(
            ("clearance_audit_batch_size_sum", "clearance_audit_batch_size_count")
        ):
            name, value = line.rsplit(" ", 1)
            figures[name.removeprefix("clearance_audit_batch_size_")] = float(value)
    return figures


def audit_line(before: dict[str, float], after: dict[str, float]) -> str:
    """The cell's durable-wait distribution (bucket bounds, ms) and mean group-commit size."""
    delta = {k: after[k] - before.get(k, 0.0) for k in after}
    buckets = sorted(
        ((float(k.removeprefix("wait<=")), v) for k, v in delta.items() if k.startswith("wait<=")),
    )
    total = buckets[-1][1] if buckets else 0.0

    def quantile(q: float) -> str:
        for bound, count in buckets:
            if total and count >= q * total:
                return "inf" if bound == float("inf") else f"<={bound * 1000:g}"
        return "-"

    batches = delta.get("count", 0.0)
    mean = delta.get("sum", 0.0) / batches if batches else 0.0
    return (
        f"audit: durable wait p50 {quantile(0.5)} ms, p99 {quantile(0.99)} ms "
        f"({total:,.0f} entries); mean group commit {mean:.1f} entries"
    )


def fsync_floor(directory: Path, samples: int = 200) -> str:
    """What one durable commit costs on this disk at least: Clearance waits for one per batch."""
    path = directory / "fsync-probe"
    times = []
    with path.open("wb") as f:
        for _ in range(samples):
            f.write(b"x" * 256)
            f.flush()
            start = time.perf_counter()
            os.fsync(f.fileno())
            times.append((time.perf_counter() - start) * 1000)
    path.unlink()
    cuts = quantiles(times, n=100)
    return f"fsync on this disk: p50 {cuts[49]:.2f} ms, p99 {cuts[98]:.2f} ms"


def print_load(when: str) -> None:
    """The machine's load average: other work on the same cores shows up in every figure."""
    one, five, _ = os.getloadavg()
    print(f"load average {when}: {one:.2f} (1 min), {five:.2f} (5 min)\n", flush=True)


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up before each")
    parser.add_argument("--api", choices=("openai", "anthropic"), default="openai")
    parser.add_argument("--ttfb-requests", type=int, default=1000)
    parser.add_argument("--skip-clearance", action="store_true", help="baseline and direct only")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="workers of the pass-through and of Clearance; above 1 nothing is pinned to a CPU",
    )
    parser.add_argument(
        "--connections",
        type=lambda v: [int(c) for c in v.split(",")],
        default=[1, 32],
        help="comma-separated wrk concurrencies (default 1,32)",
    )
    parser.add_argument(
        "--loads",
        type=lambda v: [{"non-stream": False, "streaming": True}[x] for x in v.split(",")],
        default=[False, True],
        help="non-stream,streaming (default both)",
    )
    parser.add_argument("--serve-upstream", type=int, metavar="PORT", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse(argv)
    if args.serve_upstream:
        serve_upstream(args.serve_upstream)
        return
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install -y wrk")
    if (os.cpu_count() or 1) > 1 and args.workers == 1:
        os.sched_setaffinity(0, {LOAD_CPU})  # wrk and the upstream inherit CPU 0
    print(
        f"Clearance gateway bench: {args.api} API, wrk -t1, {args.duration:g} s per cell after "
        f"{args.warmup:g} s warm-up; upstream and wrk on CPU {LOAD_CPU}, proxy on CPU "
        f"{PROXY_CPU}; Clearance: one worker, SQLite audit (WAL, fsync per commit)\n"
        if args.workers == 1
        else f"Clearance gateway bench: {args.api} API, wrk -t1, {args.duration:g} s per cell "
        f"after {args.warmup:g} s warm-up; {args.workers} workers each for the pass-through and "
        "Clearance, nothing pinned; SQLite audit (WAL, fsync per commit)\n",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="clearance-bench-") as tmp, ExitStack() as stack:
        targets = start_targets(stack, Path(tmp), args.skip_clearance, args.workers)
        print(fsync_floor(Path(tmp)))
        print_load("before")
        cells = measure(targets, args, Path(tmp))
        print_load("after")
    goals(cells)


if __name__ == "__main__":
    main()
