"""The flat columns the analysis needs, beside the raw measurement kept zstd-compressed.

One :class:`Row` per stored measurement. Both backends create their table from :data:`COLUMNS`,
so the column list lives here and nowhere else.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from reachwatch.errors import UserError

TABLE = "measurements"
META_TABLE = "collector_meta"
#: ``reachwatch analyze``'s record of the rules and fingerprints each row was judged by (its own
#: table, made by it): a re-analysis by the collector's rules alone forgets it (Store.forget_findings)
ANALYSIS_STATE = "analysis_state"
#: How a measurement's ``content_hash`` is made, as a store records it in :data:`META_TABLE` when
#: it creates its secret, and keeps for life (a resend of a row it holds must get the same hash).
#: New stores: keyed BLAKE3 (~3 us for a median measurement) of the identity form with ``test_keys``
#: as its text sent made compact (:mod:`reachwatch.collector.json_text`: ~11 us less per measurement
#: than simdjson's form, ~30 us less than parsing it with orjson and writing it back).
IDENTITY = "blake3-compact"
#: Stores made in sessions 10-19: keyed BLAKE3 with ``test_keys`` written back by simdjson
#: (:func:`~reachwatch.collector.measurement_json.load_simdjson_form`)
SIMDJSON_IDENTITY = "blake3-simdjson"
#: Stores made before: keyed BLAKE3 of the form orjson writes back; before the record existed,
#: keyed BLAKE2b (~8 us) of that form.
ORJSON_IDENTITY = "blake3"
LEGACY_IDENTITY = "blake2b"
ORJSON_IDENTITIES = (ORJSON_IDENTITY, LEGACY_IDENTITY)
IDENTITIES = (IDENTITY, SIMDJSON_IDENTITY, *ORJSON_IDENTITIES)


def identity_of(recorded: str | None, has_secret: bool, where: str) -> str:
    """The identity hash of a store from its :data:`META_TABLE` record: none with a secret is an
    older store's (:data:`LEGACY_IDENTITY`); none without one, a new store's (:data:`IDENTITY`,
    recorded with the secret it is about to get)."""
    if recorded is None:
        return LEGACY_IDENTITY if has_secret else IDENTITY
    if recorded not in IDENTITIES:
        raise UserError(
            f"the store's measurements are identified by a {recorded!r} hash, which this version of "
            "reachwatch does not know",
            where=where,
            fix="upgrade reachwatch to the version that wrote this store",
        )
    return recorded


@dataclasses.dataclass(frozen=True)
class Column:
    name: str
    duckdb: str
    clickhouse: str


#: The measurement start times both stores hold: ClickHouse 18.16's ``DateTime`` and ``Date`` run
#: from the epoch to the end of 2105 and silently wrap past them. The epoch's own day is left out:
#: 18.16 writes it (Date 0) as ``0000-00-00``, which no reader parses, and a probe whose clock says
#: 1970-01-01 has had its clock reset
EARLIEST = dt.datetime(1970, 1, 2)
LATEST = dt.datetime(2105, 12, 31, 23, 59, 59)

COLUMNS: tuple[Column, ...] = (
    Column("measurement_uid", "VARCHAR NOT NULL", "String"),
    Column("content_hash", "VARCHAR NOT NULL", "String"),
    Column("report_id", "VARCHAR NOT NULL", "String"),
    Column("input", "VARCHAR", "Nullable(String)"),
    Column("domain", "VARCHAR NOT NULL", "String"),
    Column("probe_cc", "VARCHAR NOT NULL", "String"),
    Column("probe_asn", "VARCHAR NOT NULL", "String"),
    Column("probe_network_name", "VARCHAR", "Nullable(String)"),
    Column("attributed", "BOOLEAN NOT NULL", "UInt8"),
    Column("x_probe_cc_claimed", "VARCHAR", "Nullable(String)"),
    Column("x_probe_asn_claimed", "VARCHAR", "Nullable(String)"),
    Column("measurement_start_time", "TIMESTAMP NOT NULL", "DateTime('UTC')"),
    Column("measurement_start_day", "DATE NOT NULL", "Date"),
    Column("test_name", "VARCHAR NOT NULL", "String"),
    Column("blocking", "VARCHAR", "Nullable(String)"),
    Column("accessible", "BOOLEAN", "Nullable(UInt8)"),
    Column("x_technique", "VARCHAR", "Nullable(String)"),
    Column("x_rule", "VARCHAR", "Nullable(String)"),
    Column("anomaly", "BOOLEAN NOT NULL", "UInt8"),
    Column("confirmed", "BOOLEAN NOT NULL", "UInt8"),
    Column("failure", "BOOLEAN NOT NULL", "UInt8"),
    Column("category_code", "VARCHAR", "Nullable(String)"),
    Column("probe_id_hash", "VARCHAR NOT NULL", "String"),
    Column("raw", "BLOB NOT NULL", "String"),
    # false until the background analysis has computed the verdict columns (collector/analyser.py)
    Column("analysed", "BOOLEAN NOT NULL", "UInt8 DEFAULT 1"),
)
COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in COLUMNS)
ANALYSIS_COLUMNS: tuple[str, ...] = ("blocking", "accessible", "x_technique", "x_rule", "anomaly", "failure")
_ARROW_TYPES = {
    "VARCHAR": pa.string(),
    "BOOLEAN": pa.bool_(),
    "TIMESTAMP": pa.timestamp("us"),
    "DATE": pa.date32(),
    "BLOB": pa.binary(),
}
#: The table's columns as Arrow fields (from the DuckDB types): for inserts and Arrow exchanges.
ARROW_SCHEMA = pa.schema([(c.name, _ARROW_TYPES[c.duckdb.split()[0]]) for c in COLUMNS])
#: One row as an Arrow struct of the same fields (:meth:`RowColumns.of_values` converts through it)
_ROW_STRUCT = pa.struct(list(ARROW_SCHEMA))
#: The analysis columns of a row stored before its verdict (``analysed`` false): no verdict yet, so
#: ``failure`` (OONI: "no verdict") is true and ``anomaly`` false until the analyser has run.
PENDING_ANALYSIS: dict[str, object] = {
    "blocking": None,
    "accessible": None,
    "x_technique": None,
    "x_rule": None,
    "anomaly": False,
    "failure": True,
}


@dataclasses.dataclass(frozen=True, slots=True)
class Row:
    """One stored measurement: flat columns plus ``raw`` (the measurement, zstd-compressed JSON)."""

    measurement_uid: str
    content_hash: str
    report_id: str
    input: str | None
    domain: str
    probe_cc: str
    probe_asn: str
    probe_network_name: str | None
    attributed: bool
    x_probe_cc_claimed: str | None
    x_probe_asn_claimed: str | None
    measurement_start_time: dt.datetime
    measurement_start_day: dt.date
    test_name: str
    blocking: str | None
    accessible: bool | None
    x_technique: str | None
    x_rule: str | None
    anomaly: bool
    confirmed: bool
    failure: bool
    category_code: str | None
    probe_id_hash: str
    raw: bytes
    analysed: bool = True

    def values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in COLUMN_NAMES)


_UID = COLUMN_NAMES.index("measurement_uid")
_HASH = COLUMN_NAMES.index("content_hash")
_DAY = COLUMN_NAMES.index("measurement_start_day")


class RowColumns:
    """Rows as one Arrow table of :data:`ARROW_SCHEMA`: how a batch travels from a batch worker
    process (as Arrow IPC bytes: no per-value pickling) to the insert, which reads the table as is.
    A :class:`Row` per measurement would cost ~4 us to build and ~2 us to take apart."""

    __slots__ = ("_hashes", "_uids", "table")

    def __init__(self, table: pa.Table) -> None:
        if not table.schema.equals(ARROW_SCHEMA):
            raise ValueError("rows must have the store's columns and types (ARROW_SCHEMA)")
        self.table = table
        # read once each: the commit, the journal's append, its flush and the insert all want them
        self._hashes: list[str] | None = None
        self._uids: list[str] | None = None

    @classmethod
    def of_rows(cls, rows: Sequence[Row]) -> RowColumns:
        return cls.of_values([r.values() for r in rows])

    @classmethod
    def of_values(cls, values: Sequence[Sequence[Any]]) -> RowColumns:
        """From rows (tuples or lists) in :data:`COLUMN_NAMES` order: converted as one array of
        structs, not a ``pa.array`` per column (each call costs ~4 us whatever its length: a group
        of 20 single posts took 149 us, now 77)."""
        rows = pa.array([tuple(v) for v in values], type=_ROW_STRUCT)
        return cls(pa.Table.from_batches([pa.RecordBatch.from_struct_array(rows)], schema=ARROW_SCHEMA))

    @classmethod
    def concat(cls, parts: Sequence[RowColumns]) -> RowColumns:
        return parts[0] if len(parts) == 1 else cls(pa.concat_tables([p.table for p in parts]))

    def __len__(self) -> int:
        return int(self.table.num_rows)

    @property
    def content_hashes(self) -> list[str]:
        """The rows' content hashes (one list, kept: not to be changed)."""
        if self._hashes is None:
            self._hashes = list(self.table.column(_HASH).to_pylist())
        return self._hashes

    @property
    def uids(self) -> list[str]:
        """The rows' uids (one list, kept: not to be changed)."""
        if self._uids is None:
            self._uids = list(self.table.column(_UID).to_pylist())
        return self._uids

    @property
    def days(self) -> set[dt.date]:
        """The rows' ``measurement_start_day`` values, each once (for :meth:`Store.existing`)."""
        return set(pc.unique(self.table.column(_DAY)).to_pylist())

    def take(self, indices: Sequence[int]) -> RowColumns:
        return RowColumns(self.table.take(pa.array(indices, type=pa.int64())))

    def not_in(self, known: dict[str, str], hashes: list[str] | None = None) -> RowColumns:
        """The rows whose content hash ``known`` (hash -> uid) lacks, only the first of each (a
        measurement sent twice in one group is one row); ``known`` gains their uids. ``hashes``:
        :attr:`content_hashes`, if the caller has them already."""
        hashes = self.content_hashes if hashes is None else hashes
        uids = self.uids
        keep: list[int] = []
        for i, h in enumerate(hashes):
            if h not in known:
                known[h] = uids[i]
                keep.append(i)
        return self if len(keep) == len(hashes) else self.take(keep)

    def rows(self) -> list[Row]:
        return [Row(**row) for row in self.table.to_pylist()]

    def to_ipc(self) -> bytes:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, ARROW_SCHEMA) as writer:
            writer.write_table(self.table)
        return bytes(sink.getvalue().to_pybytes())

    @classmethod
    def from_ipc(cls, data: bytes) -> RowColumns:
        return cls(pa.ipc.open_stream(data).read_all())


@dataclasses.dataclass(frozen=True, slots=True)
class Analysis:
    """The verdict columns, recomputed by ``reanalyse`` without touching the rest of the row."""

    measurement_uid: str
    blocking: str | None
    accessible: bool | None
    x_technique: str | None
    x_rule: str | None
    anomaly: bool
    failure: bool
