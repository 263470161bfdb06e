"""`clearance-verify bundle | log | monitor`. Exit 0: verified; 1: verification failed (an
alarm); 2: the check could not be made (unreachable log, unreadable file, bad argument)."""

from __future__ import annotations

import argparse
import base64
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from clearance_verify.bundle import Keys, verify_bundle
from clearance_verify.errors import CannotCheck, VerificationFailed
from clearance_verify.live import LogClient, check_log, monitor
from clearance_verify.note import COSIGNATURE_V1, ED25519, VerifiedCheckpoint, Vkey


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clearance-verify",
        description="Verify a Clearance audit log without trusting its operator.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def keys(p: argparse.ArgumentParser, required: bool) -> None:
        p.add_argument(
            "--key", required=required, help="the log's verifier key (name+keyid+base64)"
        )
        p.add_argument(
            "--witness",
            action="append",
            default=[],
            help="a witness's verifier key (type 0x04); repeat for each",
        )
        p.add_argument(
            "--quorum",
            type=int,
            default=None,
            help="valid cosignatures required (default: every --witness given)",
        )

    bundle = sub.add_parser("bundle", help="check an audit bundle (clearance audit export)")
    bundle.add_argument("directory", type=Path)
    keys(bundle, required=False)
    log = sub.add_parser("log", help="check a live log: checkpoint, tiles, root, proofs")
    log.add_argument("url", help="the log's base URL, e.g. https://gateway.example.com/audit")
    keys(log, required=True)
    log.add_argument("--checkpoint", type=Path, help="a checkpoint kept earlier: must extend it")
    log.add_argument("--samples", type=int, default=8, help="inclusion proofs to spot-check")
    log.add_argument("--timeout", type=float, default=30.0)
    mon = sub.add_parser("monitor", help="one monitoring round; alarm on a fork or rollback")
    mon.add_argument("url")
    keys(mon, required=True)
    mon.add_argument("--state", type=Path, required=True, help="where the last checkpoint is kept")
    mon.add_argument("--timeout", type=float, default=30.0)
    return parser


def _keys(args: argparse.Namespace) -> Keys | None:
    if args.key is None:
        if args.witness or args.quorum is not None:
            raise CannotCheck("--witness and --quorum need --key")
        return None
    witnesses = tuple(Vkey.parse(w, COSIGNATURE_V1) for w in args.witness)
    quorum = len(witnesses) if args.quorum is None else args.quorum
    if not 0 <= quorum <= len(witnesses):
        raise CannotCheck(f"--quorum {quorum}: between 0 and the {len(witnesses)} witnesses given")
    return Keys(Vkey.parse(args.key, ED25519), witnesses, quorum)


def _describe(verified: VerifiedCheckpoint) -> str:
    checkpoint = verified.checkpoint
    root = base64.b64encode(checkpoint.root).decode()
    lines = [f"checkpoint: {checkpoint.origin}, size {checkpoint.size}, root {root}"]
    for c in verified.cosigned:
        moment = datetime.fromtimestamp(c.timestamp, UTC).isoformat()
        lines.append(f"cosigned by {c.witness.label} at {moment}")
    return "\n".join(lines)


def run(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        keys = _keys(args)
        if args.command == "bundle":
            return _bundle(args.directory, keys)
        assert keys is not None  # --key is required for log and monitor
        client = LogClient(args.url, args.timeout)
        if args.command == "log":
            saved = None
            if args.checkpoint is not None:
                saved = _read(args.checkpoint)
            report = check_log(
                client,
                keys.log,
                keys.witnesses,
                keys.quorum,
                saved=saved,
                samples=args.samples,
                progress=lambda m: print(m, file=sys.stderr),
            )
            print(_describe(report.checkpoint))
            print(f"OK: {report.entries} entries and {report.tiles} tiles hash to the signed root")
            print(f"inclusion proofs served for {len(report.spot_checked)} entries verify")
            if report.extends is not None:
                print(f"the log extends the saved checkpoint at size {report.extends.size}")
            return 0
        result = monitor(client, args.state, keys.log, keys.witnesses, keys.quorum)
        print(_describe(result.current))
        if result.previous is None:
            print(f"OK: first round; state saved to {args.state}")
        else:
            print(f"OK: consistent with size {result.previous.size} seen before; state saved")
        return 0
    except VerificationFailed as exc:
        label = "ALARM" if args.command == "monitor" else "FAILED"
        print(f"{label}: {exc}", file=sys.stderr)
        return 1
    except CannotCheck as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CannotCheck(f"{path}: cannot read ({exc})") from exc


def _bundle(directory: Path, keys: Keys | None) -> int:
    report = verify_bundle(directory, keys)
    if report.keys_from_bundle:
        print(
            "warning: checking with the keys inside the bundle; pass --key (and --witness) "
            "as published by the operator and the witnesses to know who signed",
            file=sys.stderr,
        )
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    if report.checkpoint is not None:
        print(_describe(report.checkpoint))
    if not report.ok:
        for problem in report.problems:
            print(f"FAILED: {problem}", file=sys.stderr)
        return 1
    print(f"OK: {report.entries} entries verified against the checkpoint")
    return 0


def main() -> None:
    sys.exit(run())
