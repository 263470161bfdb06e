"""The human-readable side of an auditor's bundle: one summary, rendered as a PDF (fpdf2), as
text, or as CSV, beside the entries in JSON lines or CSV. Pure over the records it is given."""

from __future__ import annotations

import csv
import io
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from fpdf import FPDF
from fpdf.enums import XPos, YPos

Row = tuple[int, bytes, Mapping[str, Any]]  # index, the stored bytes, the typed view


@dataclass(frozen=True, slots=True)
class Table:
    title: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    widths: tuple[int, ...]  # relative column widths in the PDF


@dataclass(frozen=True, slots=True)
class Summary:
    title: str
    facts: tuple[tuple[str, str], ...]
    tables: tuple[Table, ...]
    by_type: dict[str, int]


def _text(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) or "-"
    return str(value)


def summarise(
    title: str,
    facts: Sequence[tuple[str, str]],
    records: Sequence[Mapping[str, Any]],
    legal_basis: Mapping[str, str],
) -> Summary:
    """Decisions by effect and rule with the legal basis each rule cites, request outcomes,
    identity verifications (method and date), screenings, operator actions, entries by type."""
    by_type = Counter(str(r.get("type")) for r in records)
    decisions: Counter[tuple[str, str]] = Counter()
    outcomes: Counter[tuple[str, str, str]] = Counter()
    actions: Counter[str] = Counter()
    identity: list[tuple[str, ...]] = []
    screening: list[tuple[str, ...]] = []
    for r in records:
        kind = r.get("type")
        if kind == "access_decision":
            rules = [str(x) for x in r.get("rules") or ()] or [_text(r.get("reason"))]
            for rule in rules:
                decisions[(_text(r.get("effect")), rule)] += 1
            key = (_text(r.get("outcome")), _text(r.get("status")), _text(r.get("reason")))
            outcomes[key] += 1
        elif kind == "identity_decision":
            identity.append(
                tuple(
                    _text(r.get(k)) for k in ("time", "method", "outcome", "assurance", "us_person")
                )
            )
        elif kind == "screening_decision":
            versions = r.get("list_versions") or {}
            lists = ", ".join(f"{k} {v}" for k, v in sorted(versions.items())) or "-"
            screening.append((_text(r.get("time")), _text(r.get("status")), lists))
        elif kind == "admin_action":
            actions[_text(r.get("action"))] += 1
    decision_rows = tuple(
        (effect, rule, str(n), legal_basis.get(rule) or "not a rule of the current policy")
        for (effect, rule), n in sorted(decisions.items())
    )
    tables = (
        Table(
            "Decisions by effect and rule",
            ("effect", "rule", "count", "legal basis cited"),
            decision_rows,
            (12, 30, 10, 60),
        ),
        Table(
            "Request outcomes",
            ("outcome", "status", "reason", "count"),
            tuple((*k, str(n)) for k, n in sorted(outcomes.items())),
            (25, 12, 40, 12),
        ),
        Table(
            "Identity verification: method and date",
            ("date", "method", "outcome", "assurance", "US person"),
            tuple(identity),
            (35, 20, 20, 20, 20),
        ),
        Table(
            "Restricted-party screening",
            ("date", "status", "list versions"),
            tuple(screening),
            (35, 25, 60),
        ),
        Table(
            "Operator actions",
            ("action", "count"),
            tuple((a, str(n)) for a, n in sorted(actions.items())),
            (60, 15),
        ),
        Table(
            "Entries by type",
            ("type", "count"),
            tuple((t, str(n)) for t, n in sorted(by_type.items())),
            (60, 15),
        ),
    )
    return Summary(title, tuple(facts), tables, dict(sorted(by_type.items())))


def render(fmt: str, summary: Summary, rows: Sequence[Row], created: datetime) -> dict[str, bytes]:
    """The report files for `fmt`: report.pdf; entries.jsonl + summary.txt; or the CSVs."""
    if fmt == "pdf":
        return {"report.pdf": pdf(summary, created)}
    if fmt == "jsonl":
        # Each line holds the entry's stored bytes unchanged (canonical JSON has no newline).
        lines = [b'{"index":%d,"entry":%s}\n' % (i, raw) for i, raw, _ in rows]
        return {"entries.jsonl": b"".join(lines), "summary.txt": text(summary).encode()}
    return {"entries.csv": entries_csv(rows), "summary.csv": summary_csv(summary)}


def text(summary: Summary) -> str:
    out = [summary.title, "=" * len(summary.title), ""]
    width = max(len(k) for k, _ in summary.facts)
    out += [f"{k.ljust(width)}  {v}" for k, v in summary.facts]
    for table in summary.tables:
        out += ["", table.title, "-" * len(table.title)]
        if not table.rows:
            out.append("(none)")
            continue
        cols = [
            max(len(table.header[c]), *(len(r[c]) for r in table.rows))
            for c in range(len(table.header))
        ]
        for row in (table.header, *table.rows):
            out.append("  ".join(v.ljust(w) for v, w in zip(row, cols, strict=True)).rstrip())
    return "\n".join(out) + "\n"


def summary_csv(summary: Summary) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["section", "field", "value"])
    for key, value in summary.facts:
        writer.writerow(["bundle", key, value])
    for table in summary.tables:
        writer.writerow([])
        writer.writerow([table.title, *table.header])
        for row in table.rows:
            writer.writerow([table.title, *row])
    return buffer.getvalue().encode()


ENTRY_COLUMNS = (
    "time", "type", "subject", "effect", "outcome", "status", "reason", "rules",
    "model_requested", "model_served", "endpoint", "action", "ip_country", "method",
    "assurance", "us_person", "target", "policy_hash", "facts_digest",
)  # fmt: skip


def entries_csv(rows: Sequence[Row]) -> bytes:
    """One row per entry (typed fields); `entry` holds the exact stored JSON."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["index", *ENTRY_COLUMNS, "entry"])
    for index, raw, record in rows:
        cells = []
        for column in ENTRY_COLUMNS:
            value = record.get(column)
            if isinstance(value, (dict, list)):
                cells.append(orjson.dumps(value).decode())
            else:
                cells.append("" if value is None else str(value))
        writer.writerow([index, *cells, raw.decode()])
    return buffer.getvalue().encode()


def _latin1(value: str) -> str:
    """The PDF's core font (Helvetica) is Latin-1: letters outside it lose their accents, or
    become "?"; the exact text is in the bundle's JSON files."""
    if value.isascii():
        return value
    out = []
    for c in value:
        if ord(c) < 256:
            out.append(c)
            continue
        base = "".join(d for d in unicodedata.normalize("NFKD", c) if not unicodedata.combining(d))
        out.append(base if base and all(ord(d) < 256 for d in base) else "?")
    return "".join(out)


def pdf(summary: Summary, created: datetime) -> bytes:
    doc = FPDF(orientation="portrait", unit="mm", format="A4")
    doc.set_creation_date(created)
    doc.set_title(_latin1(summary.title))
    doc.set_creator("clearance audit export")
    doc.set_auto_page_break(auto=True, margin=15)
    doc.add_page()
    doc.set_font("Helvetica", style="B", size=15)
    doc.multi_cell(0, 8, _latin1(summary.title), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    doc.ln(2)
    doc.set_font("Helvetica", size=9)
    with doc.table(col_widths=(30, 90), first_row_as_headings=False, text_align="LEFT") as facts:
        for key, value in summary.facts:
            row = facts.row()
            row.cell(_latin1(key))
            row.cell(_latin1(value))
    for table in summary.tables:
        doc.ln(4)
        doc.set_font("Helvetica", style="B", size=11)
        doc.multi_cell(0, 7, _latin1(table.title), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        doc.set_font("Helvetica", size=9)
        if not table.rows:
            doc.multi_cell(0, 5, "None.", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            continue
        with doc.table(col_widths=table.widths, text_align="LEFT") as grid:
            for values in (table.header, *table.rows):
                row = grid.row()
                for value in values:
                    row.cell(_latin1(value))
    return bytes(doc.output())
