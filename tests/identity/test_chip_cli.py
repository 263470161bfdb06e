"""`clearance identity csca load|list` against a real instance: a master list put in force as an
audited version, the same set again unchanged, junk refused with one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from clearance.cli.app import app
from tests.fixtures.identity import chip
from tests.identity.test_cli import make_instance

runner = CliRunner()


def test_csca_load_and_list(tmp_path: Path, db_url: str) -> None:
    _, config = make_instance(tmp_path / "i", db_url)
    authority = chip.default_csca()
    listed = tmp_path / "ml.cms"
    listed.write_bytes(chip.master_list_cms([authority.cert], authority))
    args = ["identity", "csca", "load", str(listed), "--json", "--config", str(config)]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    loaded = json.loads(first.output)
    assert (loaded["version"], loaded["format"], loaded["certificates"]) == (1, "cms", 1)
    assert loaded["created"] and loaded["audit_index"] is not None
    assert loaded["signers"] == ["CN=CSCA Test,O=Test State,C=NL"]

    pem = tmp_path / "ml.pem"
    pem.write_bytes(chip.pem([authority.cert]))
    again = runner.invoke(app, ["identity", "csca", "load", str(pem), "--config", str(config)])
    assert again.exit_code == 0
    assert "unchanged (version 1" in again.output  # the same certificates, another form

    shown = runner.invoke(app, ["identity", "csca", "list", "--json", "--config", str(config)])
    assert [v["version"] for v in json.loads(shown.output)] == [1]

    junk = tmp_path / "junk.ldif"
    junk.write_bytes(b"version: 1\n\ndn: c=NL\nCscaMasterListData:: !!!\n")
    command = ["identity", "csca", "load", str(junk), "--config", str(config)]
    done = subprocess.run(
        [sys.executable, "-c", "from clearance.cli.app import main; main()", *command],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: an LDIF CscaMasterListData value is not base64"
    ]
