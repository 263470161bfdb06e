"""Old tiles and entry bundles moved to the archive are still served, proven and verified."""

from __future__ import annotations

import base64
import dataclasses
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from clearance.audit import merkle
from clearance.audit.archive import BucketArchive, DirectoryArchive, archive, open_archive
from clearance.audit.keys import load_signer
from clearance.audit.routes import IMMUTABLE, audit_app
from clearance.audit.service import AuditLog
from clearance.audit.tables import audit_entries, audit_tiles
from clearance.audit.tiles import TILE_WIDTH, entry_bundle, tile_path
from clearance.audit.verify import TamperedEntry, verify_log
from clearance.cli.app import app as cli_app
from clearance.config import AuditSettings, load_settings
from clearance.demo.run import free_port
from clearance.errors import AuditUnavailable, ConfigError, VerificationError
from clearance.net.serving import serve_in_thread
from clearance.store import connect
from tests.audit.conftest import ORIGIN, entry
from tests.gateway.conftest import make_instance

SIZE = 2 * TILE_WIDTH + 88  # two full bundles and a partial one


@pytest.fixture
def settings(audit_settings: AuditSettings, tmp_path: Path) -> AuditSettings:
    return dataclasses.replace(audit_settings, archive=tmp_path / "archive")


@pytest.fixture
def log(engine: Engine, settings: AuditSettings) -> AuditLog:
    log = AuditLog(engine, settings)
    log.append_many([entry(i) for i in range(SIZE)])
    log.integrate()
    return log


def _count(engine: Engine, table: sa.Table, *where: sa.ColumnElement[bool]) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar_one()
        )


def test_archive_writes_c2sp_files_and_prune_moves_them(
    engine: Engine, settings: AuditSettings, log: AuditLog
) -> None:
    assert settings.archive is not None
    before = log.reader.entries(0, SIZE)
    tiles_before = [log.reader.tile(0, i, TILE_WIDTH) for i in range(2)]
    report = archive(engine, DirectoryArchive(settings.archive))
    assert (report.archived_below, report.pruned_below, report.bundles) == (512, 0, 2)
    root = settings.archive
    for i in range(2):
        assert (root / tile_path(None, i)).read_bytes() == entry_bundle(
            before[i * 256 : (i + 1) * 256]
        )
        assert (root / tile_path(0, i)).read_bytes() == tiles_before[i]
    assert not (root / tile_path(None, 2)).exists()  # the partial bundle stays in the database
    assert _count(engine, audit_entries) == SIZE

    again = archive(engine, DirectoryArchive(settings.archive), prune=True)
    assert (again.archived_below, again.pruned_below, again.bundles) == (512, 512, 0)
    assert _count(engine, audit_entries) == SIZE - 512
    assert _count(engine, audit_tiles, audit_tiles.c.level == 0, audit_tiles.c.idx < 2) == 0

    # Everything reads as before, through the archive.
    assert log.reader.entries(0, SIZE) == before
    assert log.reader.entries(250, 270) == before[250:270]
    assert log.reader.entry(3) == before[3]
    assert log.reader.tile(0, 1, TILE_WIDTH) == tiles_before[1]
    checkpoint_root = merkle.MemoryTree(before).root()
    for index in (0, 255, 256, 511, 512, SIZE - 1):
        size, proof = log.reader.inclusion_proof(index)
        merkle.verify_inclusion(
            index, size, merkle.leaf_hash(before[index]), proof, checkpoint_root
        )
    # The integrator and the signer go on past the pruned part.
    log.append_many([entry(i) for i in range(SIZE, SIZE + 300)])
    log.integrate()
    verifier = load_signer(settings.signing_key_file).verifier
    report2 = verify_log(engine, verifier, ORIGIN, archive=DirectoryArchive(settings.archive))
    assert report2.size == SIZE + 300
    log.close()


def test_a_pruned_log_needs_its_archive_and_catches_tampering(
    engine: Engine, settings: AuditSettings, log: AuditLog
) -> None:
    assert settings.archive is not None
    store = DirectoryArchive(settings.archive)
    archive(engine, store, prune=True)
    verifier = load_signer(settings.signing_key_file).verifier
    verify_log(engine, verifier, ORIGIN, archive=store)
    with pytest.raises(AuditUnavailable, match=r"\[audit\] archive is not set"):
        verify_log(engine, verifier, ORIGIN)
    # One changed byte in an archived entry: verification names that entry.
    path = settings.archive / tile_path(None, 1)
    data = bytearray(path.read_bytes())
    data[2 + 30] ^= 1  # inside entry 256
    path.chmod(0o644)
    path.write_bytes(bytes(data))
    with pytest.raises(TamperedEntry) as caught:
        verify_log(engine, verifier, ORIGIN, archive=store)
    assert caught.value.index == 256
    # The archive never takes other bytes for a file it holds.
    with pytest.raises(VerificationError, match="already holds another"):
        store.put(tile_path(0, 0), b"\0" * 32 * TILE_WIDTH)
    log.close()


def test_archived_tiles_are_served_immutable_and_verify_with_clearance_verify(
    engine: Engine, settings: AuditSettings, log: AuditLog
) -> None:
    assert settings.archive is not None
    before = log.reader.entries(0, TILE_WIDTH)
    archive(engine, DirectoryArchive(settings.archive), prune=True)
    log.close()
    with serve_in_thread(audit_app(engine, settings)) as url:
        tile = httpx.get(f"{url}/tile/0/000")
        assert tile.status_code == 200 and tile.headers["cache-control"] == IMMUTABLE
        assert tile.content == (settings.archive / "tile/0/000").read_bytes()
        bundle = httpx.get(f"{url}/tile/entries/000")
        assert bundle.content == entry_bundle(before)
        assert httpx.get(f"{url}/entries/7").content == before[7]
        proof = httpx.get(f"{url}/proof/inclusion", params={"index": 7}).json()
        hashes = [base64.b64decode(h) for h in proof["hashes"]]
        root = merkle.MemoryTree(log.reader.entries(0, SIZE)).root()
        merkle.verify_inclusion(7, SIZE, merkle.leaf_hash(before[7]), hashes, root)
        key = load_signer(settings.signing_key_file).verifier.text
        checked = subprocess.run(
            [str(Path(sys.executable).parent / "clearance-verify"), "log", url, "--key", key],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_archive_from_the_command_line(tmp_path: Path) -> None:
    settings, config = make_instance(f"sqlite:///{tmp_path / 'c.db'}", tmp_path / "i")
    runner = CliRunner()
    refused = runner.invoke(cli_app, ["audit", "archive", "--config", str(config)])
    assert refused.exit_code != 0 and "[audit] archive" in str(refused.exception)
    text = config.read_text().replace("[audit]\n", '[audit]\narchive = "archive"\n', 1)
    config.write_text(text)
    settings = load_settings(config)
    assert settings.audit.archive == settings.data_dir / "archive"
    engine = connect(settings.database_url)
    log = AuditLog(engine, settings.audit)
    log.append_many([entry(i) for i in range(300)])
    log.integrate()
    log.close()
    engine.dispose()
    done = runner.invoke(
        cli_app, ["audit", "archive", "--prune", "--json", "--config", str(config)]
    )
    assert done.exit_code == 0, done.output
    assert orjson.loads(done.stdout) == {
        "archived_below": 256,
        "pruned_below": 256,
        "bundles": 1,
        "tiles": 1,
    }
    assert (settings.data_dir / "archive" / "tile/entries/000").exists()
    verified = runner.invoke(cli_app, ["audit", "verify", "--config", str(config)])
    assert verified.exit_code == 0 and "OK: 300 entries" in verified.output


@pytest.fixture
def bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A real S3 HTTP endpoint on localhost (moto's server), with one empty bucket."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test-key-id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    endpoint = f"http://127.0.0.1:{port}"
    # moto keeps its buckets in this process, across servers: start from none.
    httpx.post(f"{endpoint}/moto-api/reset").raise_for_status()
    import boto3

    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="audit-archive")
    try:
        yield endpoint
    finally:
        server.stop()


def test_an_s3_compatible_bucket_holds_the_archive(
    engine: Engine, audit_settings: AuditSettings, bucket: str
) -> None:
    settings = dataclasses.replace(
        audit_settings, archive_bucket="s3://audit-archive/log-1", archive_endpoint=bucket
    )
    log = AuditLog(engine, settings)
    try:
        log.append_many([entry(i) for i in range(SIZE)])
        log.integrate()
        before = log.reader.entries(0, SIZE)
        store = open_archive(settings)
        assert isinstance(store, BucketArchive)
        report = archive(engine, store, prune=True)
        assert (report.archived_below, report.pruned_below) == (512, 512)
        assert _count(engine, audit_entries) == SIZE - 512
        import boto3

        s3 = boto3.client("s3", endpoint_url=bucket)
        head = s3.head_object(Bucket="audit-archive", Key="log-1/tile/entries/001")
        assert head["CacheControl"] == IMMUTABLE
        assert log.reader.entries(0, SIZE) == before
        verifier = load_signer(settings.signing_key_file).verifier
        assert verify_log(engine, verifier, ORIGIN, archive=store).size == SIZE
        # A changed object is caught and named.
        obj = s3.get_object(Bucket="audit-archive", Key="log-1/tile/entries/000")["Body"].read()
        changed = bytearray(obj)
        changed[2 + 5] ^= 1  # inside entry 0
        s3.put_object(Bucket="audit-archive", Key="log-1/tile/entries/000", Body=bytes(changed))
        with pytest.raises(TamperedEntry) as caught:
            verify_log(engine, verifier, ORIGIN, archive=store)
        assert caught.value.index == 0
    finally:
        log.close()
    with pytest.raises(ConfigError, match="set one, not both"):
        open_archive(dataclasses.replace(settings, archive=Path("somewhere")))
