"""A generated corpus of malformed inputs: each case is a folder of canonical CSV tables.

Run ``python tests/malformed_corpus.py OUT_DIR`` to write the corpus for a look by hand;
``tests/test_corpus.py`` builds it in a temporary folder and checks how satmodel answers each.

Every case states what a user must see:
- ``error``: exit code 2 and one stderr line that starts with ``satmodel: <table>.<column>``
  (or ``satmodel: <table>:`` for table-wide faults) and contains ``fragment``;
- ``quarantine``: exit code 2, and the rows broken are set aside with ``fragment`` as their
  reason, counted in a line ``<table>.<column>: <n> row(s) <reason>``;
- ``valid``: exit code 0.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

BASE = {
    "customers": [
        "customer_id,segment,region,tier,expected_availability_pct,expected_latency_p95_ms,expected_resolution_hours",
        "c1,enterprise,eu,gold,99.95,300,4",
        "c2,smb,us,,99.5,800,24",
        "c3,mid_market,,silver,99.9,500,8",
    ],
    "usage": [
        "customer_id,month,active_users",
        "c1,2025-01,1000",
        "c2,2025-01,50",
        "c3,2025-01,300",
        "c1,2025-02,1100",
        "c2,2025-02,55",
        "c3,2025-02,310",
    ],
    "requests": [
        "customer_id,ts,latency_ms,ok",
        "c1,2025-01-03T10:00:00Z,120,true",
        "c1,2025-02-03T10:00:00Z,250,false",
        "c2,2025-01-05T11:00:00Z,900,true",
        "c3,2025-02-07T11:00:00Z,300,true",
    ],
    "incidents": [
        "incident_id,customer_id,start_ts,end_ts,severity",
        "i1,c1,2025-01-03T10:00:00Z,2025-01-03T11:00:00Z,2",
        "i2,c2,2025-01-31T23:00:00Z,2025-02-01T01:00:00Z,1",
    ],
    "tickets": [
        "ticket_id,customer_id,opened_ts,first_response_ts,resolved_ts,priority",
        "t1,c1,2025-01-03T10:00:00Z,2025-01-03T10:30:00Z,2025-01-03T14:00:00Z,P2",
        "t2,c3,2025-02-03T10:00:00Z,,,P3",
    ],
    "changes": [
        "change_id,customer_id,ts,failed",
        "k1,c1,2025-01-03T10:00:00Z,false",
        "k2,,2025-02-03T10:00:00Z,true",
    ],
    "surveys": [
        "response_id,customer_id,ts,csat,nps",
        "r1,c1,2025-01-10T09:00:00Z,5,9",
        "r2,c2,2025-02-11T09:00:00Z,2,",
        "r3,c3,2025-02-12T09:00:00Z,4,8",
    ],
    "complaints": [
        "complaint_id,customer_id,ts,category",
        "q1,c2,2025-01-12T09:00:00Z,latency",
    ],
}


@dataclass
class Case:
    """One malformed input and the answer it must get."""

    name: str
    expect: str  # "error", "quarantine" or "valid"
    table: str | None = None
    column: str | None = None
    fragment: str = ""
    rows: int | None = None  # rows quarantined, for "quarantine"
    tables: dict[str, list[str] | bytes | None] = field(default_factory=dict)


def _with(table: str, *rows: str) -> dict[str, list[str]]:
    return {table: BASE[table] + list(rows)}


def _replace_column(table: str, old: str, new: str) -> dict[str, list[str]]:
    header, *rows = BASE[table]
    return {table: [header.replace(old, new), *rows]}


def _drop_column(table: str, column: str) -> dict[str, list[str]]:
    header = BASE[table][0].split(",")
    index = header.index(column)
    return {
        table: [
            ",".join(v for i, v in enumerate(line.split(",")) if i != index) for line in BASE[table]
        ]
    }


CASES = [
    # table-level faults: exit 2, one line naming table and column
    Case(
        "missing_customers_table",
        "error",
        "customers",
        None,
        "table not found",
        tables={"customers": None},
    ),
    Case(
        "no_service_table",
        "error",
        "requests",
        None,
        "at least one of",
        tables=dict.fromkeys(("requests", "incidents", "tickets", "changes")),
    ),
    Case(
        "missing_column",
        "error",
        "surveys",
        "csat",
        "column missing",
        tables=_drop_column("surveys", "csat"),
    ),
    Case(
        "renamed_column",
        "error",
        "requests",
        "latency_ms",
        "column missing",
        tables=_replace_column("requests", "latency_ms", "latency"),
    ),
    Case(
        "latency_all_text",
        "error",
        "requests",
        "latency_ms",
        "wrong type: expected float, found text (2 rows, none parses; e.g. 'fast')",
        tables={
            "requests": [
                BASE["requests"][0],
                "c1,2025-01-03T10:00:00Z,fast,true",
                "c2,2025-01-05T11:00:00Z,slow,true",
            ]
        },
    ),
    Case(
        "timestamps_all_free_text",
        "error",
        "surveys",
        "ts",
        "wrong type: expected timestamp, found text",
        tables={"surveys": [BASE["surveys"][0], "r1,c1,last tuesday,4,7", "r2,c2,yesterday,5,"]},
    ),
    Case(
        "ok_all_text",
        "error",
        "requests",
        "ok",
        "wrong type: expected bool",
        tables={
            "requests": [
                BASE["requests"][0],
                "c1,2025-01-03T10:00:00Z,120,maybe",
                "c2,2025-01-05T11:00:00Z,90,perhaps",
            ]
        },
    ),
    Case(
        "timestamp_as_epoch_number",
        "error",
        "complaints",
        "ts",
        "wrong type: expected timestamp, found int64",
        tables={"complaints": [BASE["complaints"][0], "q1,c2,1736672400,latency"]},
    ),
    Case(
        "empty_file",
        "error",
        "customers",
        None,
        "is empty (not even a header row)",
        tables={"customers": b""},
    ),
    Case(
        "header_only_customers",
        "error",
        "customers",
        None,
        "table is empty",
        tables={"customers": BASE["customers"][:1]},
    ),
    Case(
        "header_only_outcomes",
        "error",
        "surveys",
        None,
        "table is empty",
        tables={"surveys": BASE["surveys"][:1], "complaints": BASE["complaints"][:1]},
    ),
    Case(
        "non_utf8_bytes",
        "error",
        "customers",
        None,
        "cannot read",
        tables={
            "customers": ("\n".join(BASE["customers"]) + "\nc4,r\xe9seau,eu,,99,300,4\n").encode(
                "latin-1"
            )
        },
    ),
    # row-level faults: quarantined with a reason
    Case(
        "one_latency_as_text",
        "quarantine",
        "requests",
        "latency_ms",
        "not a float",
        1,
        _with("requests", "c1,2025-01-04T10:00:00Z,fast,true"),
    ),
    Case(
        "one_timestamp_as_free_text",
        "quarantine",
        "surveys",
        "ts",
        "not a timestamp",
        1,
        _with("surveys", "r9,c1,last tuesday,4,7"),
    ),
    Case(
        "ok_as_yes_no",
        "valid",
        tables={
            "requests": [
                BASE["requests"][0],
                "c1,2025-01-03T10:00:00Z,120,yes",
                "c2,2025-01-05T11:00:00Z,90,no",
            ]
        },
    ),
    Case(
        "csat_zero",
        "quarantine",
        "surveys",
        "csat",
        "not a whole number in 1..5",
        1,
        _with("surveys", "r9,c1,2025-01-10T09:00:00Z,0,"),
    ),
    Case(
        "csat_six",
        "quarantine",
        "surveys",
        "csat",
        "not a whole number in 1..5",
        1,
        _with("surveys", "r9,c1,2025-01-10T09:00:00Z,6,"),
    ),
    Case(
        "csat_fraction",
        "quarantine",
        "surveys",
        "csat",
        "not a whole number in 1..5",
        1,
        _with("surveys", "r9,c1,2025-01-10T09:00:00Z,3.5,"),
    ),
    Case(
        "csat_missing",
        "quarantine",
        "surveys",
        "csat",
        "missing",
        1,
        _with("surveys", "r9,c1,2025-01-10T09:00:00Z,,"),
    ),
    Case(
        "nps_eleven",
        "quarantine",
        "surveys",
        "nps",
        "not a whole number in 0..10",
        1,
        _with("surveys", "r9,c1,2025-01-10T09:00:00Z,4,11"),
    ),
    Case(
        "availability_above_100",
        "quarantine",
        "customers",
        "expected_availability_pct",
        "outside 0..100",
        1,
        _with("customers", "c4,smb,eu,,100.5,300,4"),
    ),
    Case(
        "negative_latency",
        "quarantine",
        "requests",
        "latency_ms",
        "negative",
        1,
        _with("requests", "c1,2025-01-04T10:00:00Z,-3,true"),
    ),
    Case(
        "end_before_start",
        "quarantine",
        "incidents",
        "end_ts",
        "before start_ts",
        1,
        _with("incidents", "i9,c1,2025-01-05T10:00:00Z,2025-01-05T09:00:00Z,1"),
    ),
    Case(
        "response_before_opened",
        "quarantine",
        "tickets",
        "first_response_ts",
        "before opened_ts",
        1,
        _with("tickets", "t9,c1,2025-01-05T10:00:00Z,2025-01-05T09:00:00Z,,P1"),
    ),
    Case(
        "severity_five",
        "quarantine",
        "incidents",
        "severity",
        "not a whole number in 1..4",
        1,
        _with("incidents", "i9,c1,2025-01-05T10:00:00Z,2025-01-05T11:00:00Z,5"),
    ),
    Case(
        "duplicate_ids",
        "quarantine",
        "surveys",
        "response_id",
        "duplicate id (first kept)",
        1,
        _with("surveys", "r1,c2,2025-01-11T09:00:00Z,3,"),
    ),
    Case(
        "duplicate_usage_month",
        "quarantine",
        "usage",
        "customer_id",
        "duplicate id (first kept)",
        1,
        _with("usage", "c1,2025-01,999"),
    ),
    Case(
        "unknown_customer",
        "quarantine",
        "complaints",
        "customer_id",
        "unknown customer (not in customers)",
        1,
        _with("complaints", "q9,c99,2025-01-12T09:00:00Z,other"),
    ),
    Case(
        "unknown_customer_change",
        "quarantine",
        "changes",
        "customer_id",
        "unknown customer (not in customers)",
        1,
        _with("changes", "k9,c99,2025-01-12T09:00:00Z,false"),
    ),
    Case(
        "negative_users",
        "quarantine",
        "usage",
        "active_users",
        "not a whole number >= 0",
        1,
        _with("usage", "c3,2025-03,-5"),
    ),
    Case(
        "bad_month",
        "quarantine",
        "usage",
        "month",
        "not a YYYY-MM month",
        1,
        _with("usage", "c3,2025-13,5"),
    ),
    Case(
        "timestamp_1970",
        "quarantine",
        "requests",
        "ts",
        "implausible timestamp (before 2000 or in the future)",
        1,
        _with("requests", "c1,1970-01-01T00:00:00Z,100,true"),
    ),
    Case(
        "outside_the_months",
        "quarantine",
        "surveys",
        "ts",
        "outside the data's months 2025-01..2025-02",
        1,
        _with("surveys", "r9,c1,2024-06-10T09:00:00Z,4,"),
    ),
    # inputs that look odd but meet the contract
    Case(
        "byte_order_mark",
        "valid",
        tables={"customers": ("\ufeff" + "\n".join(BASE["customers"]) + "\n").encode("utf-8")},
    ),
    Case(
        "mixed_time_zones",
        "valid",
        tables={
            "surveys": [
                BASE["surveys"][0],
                "r1,c1,2025-01-10T09:00:00Z,5,9",
                "r2,c2,2025-02-11T11:00:00+02:00,2,",
            ]
        },
    ),
    Case(
        "numeric_customer_ids",
        "valid",
        tables={t: [line.replace("c1,", "101,") for line in BASE[t]] for t in BASE},
    ),
    Case("month_without_requests", "valid", tables={"requests": BASE["requests"][:2]}),
    Case(
        "single_customer",
        "valid",
        tables={
            t: [BASE[t][0]]
            + [line for line in BASE[t][1:] if ",c1," in f",{line}," or line.startswith("c1,")]
            for t in BASE
        },
    ),
    Case(
        "global_change_only", "valid", tables={"changes": [BASE["changes"][0], BASE["changes"][2]]}
    ),
]


# --------------------------------------------------------------------------------------
# hostile output folders: what a report run finds under --out, and what it must answer
#
# Paths are relative to a project root holding data/ and reports/ (the run's --out); the run
# builds the month 2025-02. An entry is "dir", "file:<text>", "link:<target>" (a symbolic link,
# target relative to the link's folder) or "hardlink:<path relative to the root>".
# Whatever existed before the run must be exactly as it was afterwards.

PSEUDONYM_KEY = "data/pseudonym.key"
SATMODEL_TAG = '{"tool": "satmodel", "key": "2025-01"}'


@dataclass
class HostileOutput:
    """An output folder a run must not damage, and the exit code (and line) it must give."""

    name: str
    entries: dict[str, str]
    exit_code: int
    fragment: str = ""


HOSTILE_OUTPUTS = [
    HostileOutput(
        "lock_links_to_the_key",
        {"reports/.2025-02.lock": "link:../data/pseudonym.key"},
        2,
        "is a symbolic link",
    ),
    HostileOutput(
        "lock_is_a_hard_link_to_the_key",
        {"reports/.2025-02.lock": f"hardlink:{PSEUDONYM_KEY}"},
        2,
        "has other hard links",
    ),
    HostileOutput("lock_is_a_folder", {"reports/.2025-02.lock": "dir"}, 2, "lock"),
    HostileOutput(
        "stale_staging_whose_lock_links_to_the_key",
        {
            "reports/.2025-01.partial/.satmodel-staging": f"file:{SATMODEL_TAG}",
            "reports/.2025-01.lock": "link:../data/pseudonym.key",
        },
        0,
    ),
    HostileOutput(
        "hidden_folders_named_like_staging",
        {
            "reports/.ssh.old/id_ed25519": "file:private",
            "reports/.config.partial/settings": "file:mine",
            "reports/.emacs.d.old/init.el": "file:(setq x 1)",
            "reports/.satmodel-trash-mine/keep": "file:not satmodel's trash",
            "reports/2025-06/notes.txt": "file:a month folder of my own",
        },
        0,
    ),
    HostileOutput(
        "month_folder_not_written_by_satmodel",
        {"reports/2025-02/notes.txt": "file:mine"},
        2,
        "exists and was not written by satmodel",
    ),
    HostileOutput("month_folder_is_a_file", {"reports/2025-02": "file:mine"}, 2, "not a folder"),
    HostileOutput(
        "month_folder_is_a_link",
        {"elsewhere/keep": "file:mine", "reports/2025-02": "link:../elsewhere"},
        2,
        "is a symbolic link",
    ),
    HostileOutput(
        "staging_folder_is_a_link",
        {"elsewhere/keep": "file:mine", "reports/.2025-02.partial": "link:../elsewhere"},
        2,
        "is a symbolic link",
    ),
    HostileOutput(
        "staging_folder_not_made_by_satmodel",
        {"reports/.2025-02.partial/mine": "file:mine"},
        2,
        "was not made by satmodel",
    ),
]


def write_hostile_output(case: HostileOutput, root: Path) -> Path:
    """Create the case's entries under ``root`` (beside a ``data/pseudonym.key``); returns root."""
    key = root / PSEUDONYM_KEY
    key.parent.mkdir(parents=True, exist_ok=True)
    key.write_text("the pseudonym key: never to be overwritten\n")
    (root / "reports").mkdir(exist_ok=True)
    for name, entry in case.entries.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        kind, _, value = entry.partition(":")
        if kind == "dir":
            path.mkdir()
        elif kind == "file":
            path.write_text(value)
        elif kind == "link":
            path.symlink_to(value)
        else:
            os.link(root / value, path)
    return root


def write_case(case: Case, root: Path) -> Path:
    """Write one case's tables (the base tables with the case's changes) under root/name."""
    folder = root / case.name
    folder.mkdir(parents=True, exist_ok=True)
    for table, lines in BASE.items():
        content = case.tables.get(table, lines)
        if content is None:
            continue
        path = folder / f"{table}.csv"
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text("\n".join(content) + "\n", encoding="utf-8")
    return folder


def build_corpus(root: Path) -> dict[str, Path]:
    """Write every case under root; returns {case name: folder}."""
    return {case.name: write_case(case, root) for case in CASES}


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/malformed_corpus.py OUT_DIR")
    for name, folder in build_corpus(Path(sys.argv[1])).items():
        print(f"{name}: {folder}")
