"""If the audit log cannot persist, nothing is forwarded: 503 in the SDK's shape; recovery is
automatic once storage is back."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import openai
import pytest
import sqlalchemy as sa

from clearance.demo.upstream import DemoUpstream
from clearance.store import connect

from .conftest import Running

HELLO = [{"role": "user", "content": "hi"}]


@pytest.fixture
def broken_audit_store(gateway: Running) -> Iterator[None]:
    """Take the audit entries table away behind the gateway's back: every append now fails in
    the database itself, exactly as a full disk or a lost server would."""
    engine = connect(gateway.settings.database_url)
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE audit_entries RENAME TO audit_entries_away"))
    try:
        yield
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE audit_entries_away RENAME TO audit_entries"))
        engine.dispose()


def test_no_record_no_service(
    gateway: Running, demo_upstream: tuple[DemoUpstream, str], broken_audit_store: None
) -> None:
    upstream, _ = demo_upstream
    before = len(upstream.seen)
    client = gateway.openai(gateway.key("alice"))
    for model in ("mythos-5", "fable-4"):
        with pytest.raises(openai.APIStatusError) as err:
            client.chat.completions.create(model=model, messages=HELLO, stream=True)
        assert err.value.status_code == 503
        assert err.value.response.json()["error"]["code"] == "audit_unavailable"
    with pytest.raises(anthropic.APIStatusError) as aerr:
        gateway.anthropic(gateway.key("alice")).messages.create(
            model="fable-5", max_tokens=8, messages=HELLO
        )
    assert aerr.value.status_code == 503
    assert aerr.value.response.json()["type"] == "error"
    assert len(upstream.seen) == before  # nothing reached the model provider


def test_service_resumes_when_storage_returns(gateway: Running) -> None:
    client = gateway.openai(gateway.key("alice"))
    engine = connect(gateway.settings.database_url)
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE audit_entries RENAME TO audit_entries_away"))
    with pytest.raises(openai.APIStatusError):
        client.chat.completions.create(model="fable-4", messages=HELLO)
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE audit_entries_away RENAME TO audit_entries"))
    engine.dispose()
    assert client.chat.completions.create(model="fable-4", messages=HELLO).model == "fable-4"
