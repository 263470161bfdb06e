"""A writer child process for the crash and fault tests. An acknowledgement is written to
stdout (one write per line, flushed) only after `append` returned, i.e. after the commit.

    python -m tests.reliability.writer group URL KEYFILE TAG      asyncio group commit, forever,
                                                                  with the integrator thread
    python -m tests.reliability.writer sync URL KEYFILE TAG N     N single appends, integrating
                                                                  after every 4th

Lines: "ACK <index> <entry>", "FAIL <seq>", "CKPT <size>", "CKPTFAIL", "DONE".
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from clearance.audit.service import AuditLog
from clearance.config import AuditSettings
from clearance.errors import ClearanceError
from clearance.store import connect
from tests.reliability.logs import ORIGIN, entry

CONCURRENCY = 32


def say(line: str) -> None:
    # One write(2) per line, so a trace shows exactly when each acknowledgement left.
    os.write(1, (line + "\n").encode())


async def run_group(log: AuditLog, tag: str) -> None:
    log.start()

    async def one(seq: int) -> None:
        data = entry(tag, seq)
        index = await log.sequencer.append(data)
        say(f"ACK {index} {data.decode()}")

    seq = 0
    while True:
        await asyncio.gather(*(one(seq + k) for k in range(CONCURRENCY)))
        seq += CONCURRENCY


def run_sync(log: AuditLog, tag: str, count: int) -> None:
    for seq in range(count):
        data = entry(tag, seq)
        try:
            index = log.append(data)
        except ClearanceError:
            say(f"FAIL {seq}")
        else:
            say(f"ACK {index} {data.decode()}")
        if seq % 4 == 3:
            try:
                checkpoint = log.integrate()
            except ClearanceError:
                say("CKPTFAIL")
            else:
                say(f"CKPT {0 if checkpoint is None else checkpoint.size}")
    say("DONE")


def main(argv: list[str]) -> None:
    mode, url, key, tag = argv[:4]
    settings = AuditSettings(
        signing_key_file=Path(key), origin=ORIGIN, checkpoint_interval_seconds=0.05
    )
    log = AuditLog(connect(url), settings)
    if mode == "group":
        asyncio.run(run_group(log, tag))
    else:
        run_sync(log, tag, int(argv[4]))


if __name__ == "__main__":
    main(sys.argv[1:])
