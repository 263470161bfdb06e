"""A storage fault for in-process tests: the next commit raises, having persisted or not.

Sunlight's "failed but persisted": a commit can report an error although the database kept the
transaction (a lost connection during COMMIT, an I/O error after the WAL frame was written). The
fault wraps the engine's dialect `do_commit`, so it works on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.engine import Engine


class CommitFault:
    def __init__(self, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
        self._dialect = engine.dialect
        self._commit = engine.dialect.do_commit
        self._error: type[Exception] = engine.dialect.loaded_dbapi.OperationalError
        self.armed: bool | None = None  # None: off; True/False: next commit persists or not
        self.fired = 0
        monkeypatch.setattr(engine.dialect, "do_commit", self._do_commit)

    def arm(self, *, persist: bool) -> None:
        self.armed = persist

    def _do_commit(self, dbapi_conn: Any) -> None:
        persist, self.armed = self.armed, None
        if persist is None:
            self._commit(dbapi_conn)
            return
        if persist:
            self._commit(dbapi_conn)
        else:
            self._dialect.do_rollback(dbapi_conn)
        self.fired += 1
        raise self._error("injected: the commit's outcome is unknown")
