"""A child process for the crash test: appends through the group-commit sequencer for ever,
printing "index payload" for each entry the moment its append is acknowledged."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from clearance.audit.service import AuditLog
from clearance.config import AuditSettings
from clearance.store import connect
from tests.audit.conftest import entry


async def main(url: str) -> None:
    log = AuditLog(connect(url), AuditSettings(signing_key_file=Path("unused.key")))

    async def one(i: int) -> None:
        index = await log.sequencer.append(entry(i))
        sys.stdout.write(f"{index} {i}\n")
        sys.stdout.flush()

    i = 0
    while True:
        await asyncio.gather(*(one(i + k) for k in range(64)))
        i += 64


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
