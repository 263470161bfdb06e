"""Our log with two witnesses of our own (different keys): cosigned checkpoints are served; a
fork is refused by both; witnesses that are down, slow or lying never block the log."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from clearance.audit.cosignature import (
    CosignatureVerifier,
    Cosigner,
    cosignatures,
    generate_witness_key,
    split_note,
)
from clearance.audit.keys import load_signer
from clearance.audit.note import open_note
from clearance.audit.routes import audit_app
from clearance.audit.service import AuditLog
from clearance.audit.witnessing import Witnessing, witness_clients, witness_status
from clearance.config import AuditSettings
from clearance.config.loader import settings_from_mapping
from clearance.errors import ConfigError, NotFound
from clearance.net.serving import serve_in_thread
from clearance.store import connect
from clearance.witness.server import Witness, WitnessState, witness_app
from tests.audit.conftest import ORIGIN, entry


@dataclasses.dataclass
class Running:
    cosigner: Cosigner
    state: WitnessState
    url: str

    @property
    def vkey(self) -> str:
        return self.cosigner.verifier.text


@pytest.fixture
def witnesses(tmp_path: Path, audit_settings: AuditSettings) -> Iterator[list[Running]]:
    """Two witnesses of our own, with different keys, trusting our log's key."""
    log_key = load_signer(audit_settings.signing_key_file).verifier
    with ExitStack() as stack:
        running = []
        for n in (1, 2):
            cosigner = Cosigner.from_text(generate_witness_key(f"witness.test/w{n}"))
            state = WitnessState(tmp_path / f"w{n}" / "witness.sqlite3")
            stack.callback(state.close)
            app = witness_app(Witness(cosigner, {ORIGIN: [log_key]}, state))
            running.append(Running(cosigner, state, stack.enter_context(serve_in_thread(app))))
        yield running


def _with(
    settings: AuditSettings, urls_vkeys: list[tuple[str, str]], **more: object
) -> AuditSettings:
    tables = tuple({"url": url, "vkey": vkey} for url, vkey in urls_vkeys)
    return dataclasses.replace(settings, witnesses=tables, **more)  # type: ignore[arg-type]


def _cosigners(note: str, verifiers: list[CosignatureVerifier]) -> set[str]:
    text, lines = split_note(note)
    return set(cosignatures(text, lines, verifiers))


def _grow(log: AuditLog, start: int, n: int) -> None:
    log.append_many([entry(i) for i in range(start, start + n)])
    log.integrate()


def test_two_witnesses_cosign_each_new_checkpoint(
    engine: Engine, audit_settings: AuditSettings, witnesses: list[Running]
) -> None:
    settings = _with(audit_settings, [(w.url, w.vkey) for w in witnesses], witness_quorum=2)
    verifiers = [w.cosigner.verifier for w in witnesses]
    log = AuditLog(engine, settings)
    try:
        _grow(log, 0, 10)
        assert log.witnessing.round() == 0
        note = log.reader.checkpoint(quorum=2)
        assert _cosigners(note, verifiers) == {"witness.test/w1", "witness.test/w2"}
        open_note(note, load_signer(settings.signing_key_file).verifier)  # still the log's note
        _grow(log, 10, 300)  # the witnesses now need a consistency proof from 10
        assert log.witnessing.round() == 0
        note = log.reader.checkpoint(quorum=2)
        assert note.split("\n")[1] == "310"
        assert _cosigners(note, verifiers) == {"witness.test/w1", "witness.test/w2"}
        for w in witnesses:
            seen = w.state.seen(ORIGIN)
            assert seen is not None and seen.size == 310
        # Over HTTP, as an auditor reads it.
        with serve_in_thread(audit_app(engine, settings)) as url:
            served = httpx.get(url + "/checkpoint").text
        assert served == note
    finally:
        log.close()


def test_a_restarted_log_catches_up_from_the_size_the_witness_names(
    engine: Engine, audit_settings: AuditSettings, witnesses: list[Running]
) -> None:
    """A new process knows nothing of what the witness saw: it asks from 0, gets 409 with the
    witness's size (text/x.tlog.size), and asks again with a proof from that size."""
    settings = _with(audit_settings, [(witnesses[0].url, witnesses[0].vkey)])
    log = AuditLog(engine, settings)
    try:
        _grow(log, 0, 7)
        assert log.witnessing.round() == 0
        _grow(log, 7, 20)
        fresh = Witnessing(engine, settings)  # _known is empty: old = 0
        assert fresh.round() == 0
        assert _cosigners(log.reader.checkpoint(), [witnesses[0].cosigner.verifier]) == {
            "witness.test/w1"
        }
    finally:
        log.close()


def test_a_fork_is_refused_by_both_witnesses(
    engine: Engine,
    audit_settings: AuditSettings,
    witnesses: list[Running],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The operator runs a second copy of the log, signed with the same key, with other entries:
    both witnesses refuse its checkpoints, and it serves none that a quorum cosigned."""
    settings = _with(audit_settings, [(w.url, w.vkey) for w in witnesses], witness_quorum=2)
    honest = AuditLog(engine, settings)
    other = connect(f"sqlite:///{tmp_path / 'fork.db'}")
    from clearance.store import migrate

    migrate(other)
    forked = AuditLog(other, dataclasses.replace(settings, serve_without_quorum=False))
    try:
        _grow(honest, 0, 12)
        assert honest.witnessing.round() == 0
        # Same size, other entries.
        forked.append_many([entry(i, actor="someone else") for i in range(12)])
        forked.integrate()
        with caplog.at_level(logging.ERROR, logger="clearance.audit.witnessing"):
            assert forked.witnessing.round() == 2
        assert sum("reports a fork" in r.message for r in caplog.records) == 2
        # Bigger: the proof it sends does not lead from the honest tree.
        caplog.clear()
        forked.append_many([entry(i, actor="someone else") for i in range(12, 20)])
        forked.integrate()
        with caplog.at_level(logging.ERROR, logger="clearance.audit.witnessing"):
            assert forked.witnessing.round() == 2
        assert sum("rejects our consistency proof" in r.message for r in caplog.records) == 2
        with pytest.raises(NotFound, match="cosigned by 2 witnesses"):
            forked.reader.checkpoint(quorum=2)
        with serve_in_thread(audit_app(other, forked._settings)) as url:
            assert httpx.get(url + "/checkpoint").status_code == 404
        for w in witnesses:
            seen = w.state.seen(ORIGIN)
            assert seen is not None and seen.size == 12  # never moved to the fork
            assert [reason for reason, _ in w.state.evidence(ORIGIN)] == [
                "fork: same size, another root",
                "the consistency proof does not verify",
            ]
    finally:
        forked.close()
        honest.close()
        other.dispose()


def _liar(kind: str, log_size: list[int]) -> Starlette:
    """A witness that answers wrongly in one way."""
    impostor = Cosigner.from_text(generate_witness_key("witness.test/liar"))

    async def add(request: Request) -> Response:
        body = (await request.body()).decode()
        text, _ = split_note(body.split("\n\n", 1)[1])
        if kind == "other-key":  # a cosignature, but not by the key we trust for that name
            return Response(impostor.cosign(text, int(time.time())))
        if kind == "garbage":
            return Response("— witness.test/liar AAAA\n")
        if kind == "ahead":  # claims to have seen more of our log than there is
            return Response(
                f"{log_size[0] + 5}\n", 409, headers={"content-type": "text/x.tlog.size"}
            )
        if kind == "slow":
            import asyncio

            await asyncio.sleep(1)
        return Response("no\n", 403)

    return Starlette(routes=[Route("/add-checkpoint", add, methods=["POST"])])


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("other-key", "answered without its cosignature"),
        ("garbage", "answered without its cosignature"),
        ("ahead", "larger than our tree"),
        ("slow", "unreachable"),
        ("forbidden", "HTTP 403 (our log key is not trusted there)"),
        ("down", "unreachable"),
    ],
)
def test_a_bad_witness_is_logged_and_blocks_nothing(
    engine: Engine,
    audit_settings: AuditSettings,
    witnesses: list[Running],
    kind: str,
    message: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    liar_key = generate_witness_key("witness.test/liar")
    liar_vkey = Cosigner.from_text(liar_key).verifier.text
    size = [0]
    with ExitStack() as stack:
        if kind == "down":
            url = "http://127.0.0.1:9"  # discard: nothing listens
        else:
            url = stack.enter_context(serve_in_thread(_liar(kind, size)))
        settings = _with(
            audit_settings,
            [(witnesses[0].url, witnesses[0].vkey), (url, liar_vkey)],
            witness_timeout_seconds=0.2,
        )
        log = AuditLog(engine, settings)
        stack.callback(log.close)
        _grow(log, 0, 5)
        size[0] = 5
        with caplog.at_level(logging.WARNING, logger="clearance.audit.witnessing"):
            assert log.witnessing.round() == 1
        assert any(message in r.message for r in caplog.records), [
            r.message for r in caplog.records
        ]
        # The good witness cosigned; the log still appends, integrates and serves.
        note = log.reader.checkpoint()
        assert _cosigners(note, [witnesses[0].cosigner.verifier]) == {"witness.test/w1"}
        _grow(log, 5, 1)
        assert log.reader.sizes() == (6, 6)


def test_the_integrator_submits_each_checkpoint_it_signs(
    engine: Engine, audit_settings: AuditSettings, witnesses: list[Running]
) -> None:
    settings = _with(audit_settings, [(w.url, w.vkey) for w in witnesses], witness_quorum=2)
    log = AuditLog(engine, settings)
    log.start()
    try:
        for i in range(3):
            log.append(entry(i))
        deadline = time.monotonic() + 20
        while True:
            try:
                note = log.reader.checkpoint(quorum=2)
                if note.split("\n")[1] == "3":
                    break
            except NotFound:
                pass
            assert time.monotonic() < deadline, "the witnesses never cosigned size 3"
            time.sleep(0.02)
    finally:
        log.close()


def test_witness_configuration_is_checked(audit_settings: AuditSettings) -> None:
    vkey = Cosigner.from_text(generate_witness_key("witness.test/w1")).verifier.text
    one = _with(audit_settings, [("http://127.0.0.1:1", vkey)], witness_quorum=2)
    with pytest.raises(ConfigError, match="only 1 witnesses"):
        witness_clients(one)
    twice = _with(audit_settings, [("http://a.test", vkey), ("http://b.test", vkey)])
    with pytest.raises(ConfigError, match="same key name"):
        witness_clients(twice)
    log_key = load_signer(audit_settings.signing_key_file).verifier.text  # type 0x01, not 0x04
    with pytest.raises(ConfigError, match="vkey"):
        witness_clients(_with(audit_settings, [("http://a.test", log_key)]))


def test_witness_tables_in_the_configuration_file(tmp_path: Path) -> None:
    vkey = Cosigner.from_text(generate_witness_key("witness.test/w1")).verifier.text
    table = {"url": "https://witness.example/w1", "vkey": vkey}
    raw = {"audit": {"witnesses": [table], "witness_quorum": 1, "serve_without_quorum": False}}
    settings = settings_from_mapping(raw, base=tmp_path)
    assert settings.audit.witnesses == (table,)
    assert settings.audit.serve_without_quorum is False
    for bad in ({"url": "ftp://witness.example", "vkey": vkey}, {"url": "https://w.example"}):
        with pytest.raises(ConfigError, match=r"\[audit\] witnesses: .* `url` .* `vkey`"):
            settings_from_mapping({"audit": {"witnesses": [bad]}}, base=tmp_path)


def test_status_shows_how_far_each_witness_cosigned(
    engine: Engine, audit_settings: AuditSettings, witnesses: list[Running]
) -> None:
    down = Cosigner.from_text(generate_witness_key("witness.test/down")).verifier.text
    settings = _with(
        audit_settings,
        [(witnesses[0].url, witnesses[0].vkey), ("http://127.0.0.1:9", down)],
        witness_timeout_seconds=0.2,
    )
    log = AuditLog(engine, settings)
    try:
        _grow(log, 0, 4)
        assert log.witnessing.round() == 1
        _grow(log, 4, 3)
        size, status = witness_status(engine, settings)
        assert size == 7
        assert [(w.name, w.cosigned_size, w.behind) for w in status] == [
            ("witness.test/w1", 4, 3),
            ("witness.test/down", 0, 7),
        ]
        assert status[0].cosigned_at is not None and status[1].cosigned_at is None
    finally:
        log.close()
