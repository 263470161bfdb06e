"""The gateway's upstream client (clearance.net.h1) against small real servers on localhost:
framing (length, chunked, connection end, interim answers), keep-alive and its limits, broken and
slow upstreams, header injection, back-pressure and TLS."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import uvloop
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from clearance.net import h1

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Upstream:
    """A TCP server whose every connection runs `handler`; counts connections and keeps each
    request head it read."""

    def __init__(self, handler: Handler, context: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.context = context
        self.connections = 0
        self.heads: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> Upstream:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.context)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        scheme = "https" if self.context else "http"
        return f"{scheme}://127.0.0.1:{port}/v1/chat/completions"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def read_request(self, reader: asyncio.StreamReader) -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        self.heads.append(head)
        length = 0
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        return await reader.readexactly(length)


def run(coro: Awaitable[None]) -> None:
    uvloop.run(coro)  # type: ignore[arg-type]


def client(**kw: float) -> h1.Client:
    return h1.Client(connect_timeout=kw.get("connect", 2.0), read_timeout=kw.get("read", 2.0))


OK = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"


def test_keep_alive_reuses_one_connection_and_sends_a_clean_head() -> None:
    async def main() -> None:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while True:
                body = await up.read_request(reader)
                reply = b'{"echo": %d}' % len(body)
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(reply) + reply)
                await writer.drain()

        async with Upstream(handler) as up:
            c = client()
            for i in range(5):
                headers = [("content-type", "application/json"), ("content-length", "999")]
                async with c.post(up.url, b"x" * i, headers) as resp:
                    assert resp.status == 200
                    assert await resp.read() == b'{"echo": %d}' % i
            assert up.connections == 1
            head = up.heads[-1].decode()
            assert head.startswith("POST /v1/chat/completions HTTP/1.1\r\n")
            lines = head.lower().split("\r\n")
            assert f"host: {up.url.split('/')[2]}" in lines
            assert "accept-encoding: identity" in lines
            # The caller's framing headers are dropped; the length is the body's.
            assert [line for line in lines if line.startswith("content-length")] == [
                "content-length: 4"
            ]
            await c.close()

    run(main())


def test_a_chunked_stream_is_relayed_as_it_arrives() -> None:
    async def main() -> None:
        release = asyncio.Event()

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await up.read_request(reader)
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                b"transfer-encoding: chunked\r\n\r\n"
            )
            writer.write(b"7\r\ndata: 1\r\n")
            await writer.drain()
            await release.wait()  # the first event must reach the caller before the rest exists
            writer.write(b"7\r\ndata: 2\r\n0\r\n\r\n")
            await writer.drain()
            await reader.read()  # keep the connection open: the client may reuse it

        async with Upstream(handler) as up:
            c = client()
            async with c.post(up.url, b"{}", []) as resp:
                assert resp.status == 200
                assert (b"content-type", b"text/event-stream") in resp.headers
                chunks = resp.iter_any()
                assert await chunks.__anext__() == b"data: 1"
                release.set()
                rest = [chunk async for chunk in chunks]
                assert b"".join(rest) == b"data: 2"
            assert c.idle_connections() == 1
            await c.close()

    run(main())


def test_a_body_without_length_ends_with_the_connection_and_is_not_reused() -> None:
    async def main() -> None:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await up.read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nall of it")
            await writer.drain()
            writer.close()

        async with Upstream(handler) as up:
            c = client()
            async with c.post(up.url, b"{}", []) as resp:
                assert await resp.read() == b"all of it"
            assert c.idle_connections() == 0
            await c.close()

    run(main())


def test_interim_answers_are_skipped_and_connection_close_is_honoured() -> None:
    async def main() -> None:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await up.read_request(reader)
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            writer.write(
                b"HTTP/1.1 429 Too Many Requests\r\nconnection: close\r\n"
                b"content-length: 4\r\n\r\nslow"
            )
            await writer.drain()

        async with Upstream(handler) as up:
            c = client()
            async with c.post(up.url, b"{}", []) as resp:
                assert resp.status == 429
                assert await resp.read() == b"slow"
            assert c.idle_connections() == 0
            await c.close()

    run(main())


def test_a_truncated_answer_is_an_error_not_a_short_body() -> None:
    async def main() -> None:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await up.read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly this")
            await writer.drain()
            writer.close()

        async with Upstream(handler) as up:
            c = client()
            with pytest.raises(h1.UpstreamConnectionError, match="mid-answer"):
                async with c.post(up.url, b"{}", []) as resp:
                    await resp.read()
            assert c.idle_connections() == 0
            await c.close()

    run(main())


def test_garbage_is_a_protocol_error() -> None:
    async def main() -> None:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await up.read_request(reader)
            writer.write(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
            await writer.drain()
            await reader.read()

        async with Upstream(handler) as up:
            c = client()
            with pytest.raises(h1.UpstreamProtocolError):
                async with c.post(up.url, b"{}", []):
                    pass
            await c.close()

    run(main())


def test_a_silent_upstream_times_out_at_the_head_and_mid_body() -> None:
    async def main() -> None:
        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await up.read_request(reader)
            await reader.read()

        async with Upstream(silent) as up:
            c = client(read=0.2)
            with pytest.raises(TimeoutError):
                async with c.post(up.url, b"{}", []):
                    pass
            assert c.idle_connections() == 0
            await c.close()

        async def stalls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await stalled.read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n")
            await writer.drain()
            await reader.read()

        async with Upstream(stalls) as stalled:
            c = client(read=0.2)
            seen = []
            with pytest.raises(TimeoutError):
                async with c.post(stalled.url, b"{}", []) as resp:
                    async for chunk in resp.iter_any():
                        seen.append(chunk)
            assert seen == [b"abc"]
            assert c.idle_connections() == 0
            await c.close()

    run(main())


def test_an_unreachable_upstream_is_a_connection_error() -> None:
    async def main() -> None:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        c = client()
        with pytest.raises(h1.UpstreamConnectionError, match="cannot connect"):
            async with c.post(f"http://127.0.0.1:{port}/v1/messages", b"{}", []):
                pass
        await c.close()

    run(main())


def test_a_header_with_a_line_break_is_never_sent() -> None:
    async def main() -> None:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await up.read_request(reader)
            writer.write(OK)
            await writer.drain()

        async with Upstream(handler) as up:
            c = client()
            bad = [("authorization", "Bearer sk\r\nx-injected: 1")]
            with pytest.raises(h1.InvalidRequest):
                async with c.post(up.url, b"{}", bad):
                    pass
            assert up.connections == 0
            with pytest.raises(h1.InvalidRequest):
                async with c.post("ftp://127.0.0.1/x", b"{}", []):
                    pass
            await c.close()

    run(main())


def test_an_idle_connection_the_upstream_closed_is_not_used() -> None:
    async def main() -> None:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await up.read_request(reader)
            writer.write(OK)
            await writer.drain()
            # ... and then the upstream drops the kept-alive connection while it is idle.

        async with Upstream(handler) as up:
            c = client()
            async with c.post(up.url, b"{}", []) as resp:
                assert await resp.read() == b"{}"
            assert c.idle_connections() == 1
            for _ in range(100):  # until the client has seen the close
                if c._idle and all(conn.lost for conns in c._idle.values() for conn in conns):
                    break
                await asyncio.sleep(0.01)
            async with c.post(up.url, b"{}", []) as resp:
                assert await resp.read() == b"{}"
            assert up.connections == 2
            await c.close()

    run(main())


def test_an_answer_left_unread_closes_its_connection() -> None:
    async def main() -> None:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while True:
                await up.read_request(reader)
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n01234")
                await writer.drain()

        async with Upstream(handler) as up:
            c = client()
            async with c.post(up.url, b"{}", []) as resp:
                assert resp.status == 200  # the relay ended early (a kill switch, a hang-up)
            assert c.idle_connections() == 0
            await c.close()

    run(main())


def test_a_slow_reader_pauses_the_upstream() -> None:
    """Back-pressure: while the caller does not read, at most about HIGH_WATER bytes wait."""

    async def main() -> None:
        total = 64 * h1.HIGH_WATER  # beyond what the kernel's socket buffers hold
        sent = 0

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal sent
            await up.read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % total)
            block = b"x" * 65536
            while sent < total:
                writer.write(block)
                await writer.drain()
                sent += len(block)

        async with Upstream(handler) as up:
            c = client()
            async with c.post(up.url, b"{}", []) as resp:
                chunks = resp.iter_any()
                first = await chunks.__anext__()
                await asyncio.sleep(0.3)  # the upstream writes as fast as it may meanwhile
                # Paused past HIGH_WATER; the loop's last read (uvloop: up to 256 KiB) lands.
                assert resp._size <= h1.HIGH_WATER + 256 * 1024
                assert sent < total  # held back by the paused reading, not all buffered here
                rest = [chunk async for chunk in chunks]
                assert len(first) + sum(map(len, rest)) == total
            await c.close()

    run(main())


def _certificate(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "upstream.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_tls_checks_the_certificate(tmp_path: Path) -> None:
    cert, key = _certificate(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)

    async def main() -> None:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await up.read_request(reader)
            writer.write(OK)
            await writer.drain()
            await reader.read()

        async with Upstream(handler, server_context) as up:
            trusting = ssl.create_default_context(cafile=str(cert))
            c = h1.Client(connect_timeout=2, read_timeout=2, ssl_context=trusting)
            async with c.post(up.url, b"{}", []) as resp:
                assert resp.status == 200
                assert await resp.read() == b"{}"
            await c.close()
            # The system's trust store does not know this certificate: refused, not sent.
            c = client()
            with pytest.raises(h1.UpstreamConnectionError, match="certificate"):
                async with c.post(up.url, b"{}", []):
                    pass
            await c.close()

    run(main())


def test_a_second_answer_to_one_request_is_never_reused() -> None:
    async def main() -> None:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while True:
                await up.read_request(reader)
                writer.write(OK + OK)  # out of step: the next request would read this one
                await writer.drain()

        async with Upstream(handler) as up:
            c = client()
            async with c.post(up.url, b"{}", []) as resp:
                assert await resp.read() == b"{}"
                await asyncio.sleep(0.05)  # the stray answer arrives
            async with c.post(up.url, b"{}", []) as resp:
                assert await resp.read() == b"{}"
            assert up.connections == 2
            await c.close()

    run(main())
