"""A measurement's text to the dict staging takes, test_keys as its text made compact (a new store's
form) or minified by simdjson (a store of sessions 10-19): the same values as orjson reads, one
identity form whichever way a measurement comes, nothing an address hides in."""

from __future__ import annotations

import contextlib
import copy
import json
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.conftest import MINIMAL, PROBE_V4, collector
from collector.test_app import OPEN
from reachwatch.collector.attribution import Network
from reachwatch.collector.batch import POOLED_LINES
from reachwatch.collector.config import Settings
from reachwatch.collector.http import InexactNumber
from reachwatch.collector.measurement_json import (
    load,
    load_simdjson_form,
    load_submission,
    load_submission_simdjson_form,
    minified,
)
from reachwatch.collector.prepare import stage
from reachwatch.store.compression import decompress
from reachwatch.store.schema import IDENTITY, META_TABLE, SIMDJSON_IDENTITY, TABLE
from store.backends import SHARED

#: numbers simdjson writes otherwise than orjson (seen in OONI's own data): 2.336e-05 and
#: 0.00002336, ...313 and ...312
FLOATS = {"t": 0.00002336, "t0": 3.125e-05, "runtime": 0.7404861450195312, "n": 10**19, "neg": -0.0}


def shared_lines() -> list[bytes]:
    out = []
    for name in (
        "measurements_real.jsonl",
        "measurements_qa_emulated.jsonl",
        "measurements_spec_examples.jsonl",
    ):
        path = SHARED / name
        if not path.is_file():
            pytest.skip(f"shared OONI data absent: {path} (expected next to the repo, in shared/data/ooni)")
        out += [line for line in path.read_bytes().splitlines() if line.strip()]
    return out


def as_orjson_reads(m: Any) -> Any:
    """``m`` with its test_keys Fragment read back: what orjson.loads gives for the same text."""
    out = dict(m)
    if isinstance(out.get("test_keys"), orjson.Fragment):
        out["test_keys"] = orjson.loads(orjson.dumps({"k": out["test_keys"]}))["k"]
    return out


def orjson_form(test_keys: Any) -> orjson.Fragment:
    """The test_keys text a new store takes for a measurement given as Python values (prepare.stage)."""
    return orjson.Fragment(orjson.dumps(test_keys))


#: (line loader, submission loader, the form of Python values) of a new store and of a store of
#: sessions 10-19
FORMS = [(load, load_submission, orjson_form), (load_simdjson_form, load_submission_simdjson_form, minified)]
Load = Any


@pytest.mark.parametrize(("load_line", "_", "python_form"), FORMS, ids=["compact", "simdjson"])
def test_real_measurements_load_to_what_orjson_reads_and_one_identity_form(
    load_line: Load, _: Load, python_form: Load
) -> None:
    for line in shared_lines():
        m = load_line(line)
        assert isinstance(m["test_keys"], orjson.Fragment)
        assert as_orjson_reads(m) == orjson.loads(line)
        # a measurement given as Python values (an import, a test) gets the same test_keys text
        # as its text written by orjson, however spaced
        again = orjson.loads(line)
        for text in (orjson.dumps(again), orjson.dumps(again, option=orjson.OPT_INDENT_2)):
            assert orjson.dumps(python_form(again["test_keys"])) == orjson.dumps(load_line(text)["test_keys"])
        if load_line is load_simdjson_form:  # simdjson writes the numbers back: whoever wrote them
            assert orjson.dumps(python_form(again["test_keys"])) == orjson.dumps(m["test_keys"])


def test_numbers_written_otherwise_than_orjson_have_one_identity_form_in_simdjsons() -> None:
    m = {**MINIMAL, "test_keys": {**FLOATS, "list": [1.5e300, 1e-7, 12345678901234567]}}
    line = orjson.dumps(m)
    loaded = load_simdjson_form(line)
    assert as_orjson_reads(loaded) == orjson.loads(line)
    assert orjson.dumps(minified(m["test_keys"])) == orjson.dumps(loaded["test_keys"])
    spaced = json.dumps(m, indent=2).encode()  # another writer's whitespace and numbers (1e-05)
    assert orjson.dumps(load_simdjson_form(spaced)["test_keys"]) == orjson.dumps(loaded["test_keys"])


def test_numbers_are_kept_as_sent_in_the_compact_form() -> None:
    """Never rewritten, so never rounded: ``1E2`` stays ``1E2``, Go's ``2.336e-05`` and Python's
    ``1e-05`` as they came; spaces and escapes do not change the text."""
    line = b'{"test_keys": {"a": 1E2, "b": 2.336e-05, "c": [1e-05, -0.0, 0.1000], "d": 12345678901234567}}'
    want = b'{"a":1E2,"b":2.336e-05,"c":[1e-05,-0.0,0.1000],"d":12345678901234567}'
    assert orjson.dumps(load(line)["test_keys"]) == want
    spaced = line.replace(b", ", b" ,\n\t ").replace(b": ", b" : ")
    assert orjson.dumps(load(spaced)["test_keys"]) == want
    m = {**MINIMAL, "test_keys": FLOATS}
    assert orjson.dumps(load(orjson.dumps(m))["test_keys"]) == orjson.dumps(FLOATS)


@settings(max_examples=150, deadline=None)
@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers(-(2**63), 2**64 - 1)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        max_leaves=25,
    )
)
def test_any_test_keys_load_as_orjson_reads_them_with_one_identity_form(value: Any) -> None:
    m = {**MINIMAL, "test_keys": {"v": value}}
    line = orjson.dumps(m)
    for load_line, _, python_form in FORMS:
        loaded = load_line(line)
        assert as_orjson_reads(loaded) == orjson.loads(line)
        assert orjson.dumps(python_form(m["test_keys"])) == orjson.dumps(loaded["test_keys"])


@pytest.mark.parametrize(("load_line", "load_body", "_"), FORMS, ids=["compact", "simdjson"])
def test_escapes_are_undone_so_an_address_cannot_hide_in_them(
    load_line: Load, load_body: Load, _: Load
) -> None:
    line = b'{"test_keys": {"ip": "\\u0032\\u0030\\u0033.0.113.77", "b": "\\u003chtml\\u003e \\/"}}'
    assert orjson.dumps(load_line(line)["test_keys"]) == b'{"ip":"203.0.113.77","b":"<html> /"}'
    body = b'{"content": ' + line + b"}"
    assert orjson.dumps(load_body(body)["content"]["test_keys"]) == b'{"ip":"203.0.113.77","b":"<html> /"}'


@pytest.mark.parametrize(("load_line", "load_body"), [f[:2] for f in FORMS], ids=["compact", "simdjson"])
def test_what_simdjson_and_orjson_disagree_on_is_decided_as_orjson_does(
    load_line: Load,
    load_body: Load,
) -> None:
    with pytest.raises(orjson.JSONDecodeError):  # simdjson skips a byte order mark
        load_line(b'\xef\xbb\xbf{"test_keys": {}}')
    assert (
        orjson.dumps(load_line(b'{"test_keys": {"n": 18446744073709551615}}')["test_keys"])
        == b'{"n":18446744073709551615}'
    )
    # a key simdjson cannot look up by name
    assert as_orjson_reads(load_line(b'{"a\\u0000b": 1, "test_keys": {}}')) == {"a\x00b": 1, "test_keys": {}}
    assert load_line(b'[1, {"a": 2}]') == [1, {"a": 2}] and load_line(b'"x"') == "x"
    assert load_line(b'{"a": 1, "a": 2, "test_keys": {}}')["a"] == 1  # the first of a key given twice
    for bad in (b'{"a": 1,}', b'{"a": "\\ud800"}', b'{"a": "\xff"}', b"[" * 1030 + b"]" * 1030):
        with pytest.raises(orjson.JSONDecodeError):
            load_line(bad)


@pytest.mark.parametrize("number", [b"18446744073709551616", b"-9223372036854775809", b"1" + b"0" * 30])
@pytest.mark.parametrize(("load_line", "load_body"), [f[:2] for f in FORMS], ids=["compact", "simdjson"])
def test_an_integer_past_64_bits_is_refused_not_rounded(
    load_line: Load, load_body: Load, number: bytes
) -> None:
    """orjson reads it as a float: the measurement would have been stored rounded
    (``12345678901234567890123`` as ``1.2345678901234568e+22``), silently."""
    for line in (
        b'{"test_keys": {"n": %s}}' % number,
        b'{"annotations": {"n": %s}, "test_keys": {}}' % number,
    ):
        with pytest.raises(InexactNumber, match="integer past 64 bits"):
            load_line(line)
        with pytest.raises(InexactNumber):
            load_body(b'{"format": "json", "content": %s}' % line)
    with pytest.raises(orjson.JSONDecodeError) as refused:  # a float past the doubles: orjson's error
        load_line(b'{"test_keys": {"n": 1e400}}')
    assert not isinstance(refused.value, InexactNumber)
    with pytest.raises(orjson.JSONDecodeError) as refused:  # and the text's own fault, if any
        load_line(b'{"test_keys": {"n": 18446744073709551616}')
    assert not isinstance(refused.value, InexactNumber)


@pytest.mark.parametrize(("load_line", "load_body"), [f[:2] for f in FORMS], ids=["compact", "simdjson"])
def test_a_submission_has_its_content_loaded_as_a_line(
    load_line: Load,
    load_body: Load,
) -> None:
    body = orjson.dumps({"format": "json", "content": {**MINIMAL, "test_keys": FLOATS}, "x": {"y": [1]}})
    got = load_body(body)
    assert got["x"] == {"y": [1]} and got["format"] == "json"
    assert orjson.dumps(got["content"]["test_keys"]) == orjson.dumps(
        load_line(orjson.dumps(got["content"]))["test_keys"]
    )
    assert load_body(b'{"a\\u0000": 1}') == {"a\x00": 1}


@pytest.mark.parametrize(("load_line", "load_body"), [f[:2] for f in FORMS], ids=["compact", "simdjson"])
def test_a_proxy_left_alive_does_not_break_the_next_parse(
    load_line: Load,
    load_body: Load,
) -> None:
    import simdjson

    from reachwatch.collector import measurement_json

    kept = measurement_json._parser().parse(b'{"a": {"b": 1}}')["a"]
    assert isinstance(kept, simdjson.Object)
    assert load_line(b'{"test_keys": {"c": 2}}')["test_keys"] is not None
    del kept


def _measurement(i: int) -> dict[str, Any]:
    return {
        **copy.deepcopy(MINIMAL),
        "input": f"https://site{i}.example/",
        "probe_ip": PROBE_V4,
        "test_keys": {**FLOATS, "i": i, "client_resolver": "\\u0032" + PROBE_V4[1:]},
    }


@pytest.mark.parametrize("identity", [IDENTITY, SIMDJSON_IDENTITY])
async def test_every_route_gives_one_measurement_one_hash(tmp_path: Path, identity: str) -> None:
    """Single post, a small batch (staged in the collector's process), a big one (in the worker
    processes) and a measurement given as Python values: one content hash, so resends by any
    route are recognised; the address written with an escape is scrubbed from what is stored.
    A store of sessions 10-19 keeps simdjson's form on every route (its numbers written back)."""
    lines = [orjson.dumps(_measurement(i)) for i in range(POOLED_LINES + 3)]
    # the escape, as JSON text: \\u0032 in the dict is a backslash; make it a real JSON escape
    lines = [line.replace(b"\\\\u0032", b"\\u0032") for line in lines]
    db = tmp_path / "m.duckdb"
    if identity != IDENTITY:
        with duckdb.connect(str(db)) as con:
            con.execute(f"CREATE TABLE {META_TABLE} (key VARCHAR PRIMARY KEY, value BLOB)")
            con.execute(
                f"INSERT INTO {META_TABLE} VALUES ('secret', ?), ('identity', ?)",
                [b"s" * 32, identity.encode()],
            )
    async with collector(Settings(store=str(db), rate=0, ingest_workers=2)) as (app, http):
        assert app.state.ingestor.identity == app.state.batch_pool.identity == identity
        rid = (await http.post("/report", json=OPEN)).json()["report_id"]
        single = await http.post(f"/report/{rid}", content=b'{"format":"json","content":' + lines[0] + b"}")
        small = await http.post("/api/v1/measurements", content=b"\n".join(lines[:3]))
        big = await http.post("/api/v1/measurements", content=b"\n".join(lines))
        assert single.status_code == small.status_code == big.status_code == 200, big.text
        uid = single.json()["measurement_uid"]
        assert small.json()["measurement_uids"][0] == big.json()["measurement_uids"][0] == uid
        ingestor = app.state.ingestor
        staged = stage(
            orjson.loads(lines[1]), ingestor.secret, False, PROBE_V4, Network(), identity=ingestor.identity
        )
        await app.state.ingestor.settled()
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(f"SELECT content_hash, raw FROM {TABLE} ORDER BY input").fetchall()
    assert len(rows) == len(lines)
    assert (
        staged.canonical
        == stage(
            (load if identity == IDENTITY else load_simdjson_form)(lines[1]),
            b"s" * 32,
            False,
            PROBE_V4,
            Network(),
            identity=identity,
        ).canonical
    )
    for _, raw in rows:
        text = decompress(raw)
        assert PROBE_V4.encode() not in text and b"[scrubbed]" in text
        assert (b'"t":0.00002336,' if identity == IDENTITY else b'"t":2.336e-05,') in text


async def test_a_line_with_a_nul_key_is_still_one_measurement(tmp_path: Path) -> None:
    """orjson's way for a line pysimdjson cannot look up, simdjson's for the rest: one hash."""
    m = {**MINIMAL, "a\x00b": 1, "test_keys": FLOATS}
    async with collector(Settings(store=str(tmp_path / "m.duckdb"), rate=0)) as (_, http):
        first = await http.post("/api/v1/measurements", content=orjson.dumps(m))
        rid = (await http.post("/report", json=OPEN)).json()["report_id"]
        again = await http.post(f"/report/{rid}", content=orjson.dumps({"format": "json", "content": m}))
    assert first.status_code == again.status_code == 200, (first.text, again.text)
    assert first.json()["measurement_uids"][0] == again.json()["measurement_uid"]


_LINE = orjson.dumps({**MINIMAL, "test_keys": {**FLOATS, "s": "é\u2028<>", "l": [1, {"k": None}]}})


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, len(_LINE)), st.integers(0, 4), st.binary(max_size=4)),
        min_size=1,
        max_size=4,
    )
)
@pytest.mark.parametrize(("load_line", "load_body"), [f[:2] for f in FORMS], ids=["compact", "simdjson"])
def test_a_damaged_line_is_a_json_error_and_nothing_orjson_refuses_is_taken(
    load_line: Load,
    load_body: Load,
    edits: list[tuple[int, int, bytes]],
) -> None:
    """Bytes cut, replaced and inserted anywhere in a line: what load takes, orjson takes too (the
    analysis reads the stored text with orjson); what it refuses is orjson's error (a 400 saying
    where), never another exception."""
    line = bytearray(_LINE)
    for at, cut, new in edits:
        line[at : at + cut] = new
    data = bytes(line)
    body = b'{"format":"json","content":' + data + b"}"
    for parse, text in ((load_line, data), (load_body, body)):
        try:
            parse(text)
        except orjson.JSONDecodeError:
            continue
        orjson.loads(text)


@pytest.mark.parametrize(("load_line", "load_body"), [f[:2] for f in FORMS], ids=["compact", "simdjson"])
def test_a_big_document_leaves_no_buffers_behind(
    load_line: Load, load_body: Load, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The thread's parser keeps buffers for the largest document it has read (~7 bytes a byte):
    one past KEPT_PARSER_BYTES is read by a parser of its own, freed with it."""
    import simdjson

    from reachwatch.collector import measurement_json

    measurement_json._parser()  # the thread's, made before
    made: list[object] = []
    real = simdjson.Parser

    def counted() -> object:
        made.append(real())
        return made[-1]

    monkeypatch.setattr(simdjson, "Parser", counted)
    line = orjson.dumps({**MINIMAL, "test_keys": {"a": [1]}})
    big = orjson.dumps(
        {**MINIMAL, "test_keys": {"a": ["x" * 100] * (measurement_json.KEPT_PARSER_BYTES // 100)}}
    )
    assert len(big) > measurement_json.KEPT_PARSER_BYTES
    assert as_orjson_reads(load_line(line)) == orjson.loads(line)
    assert made == []  # the thread's parser
    assert as_orjson_reads(load_line(big)) == orjson.loads(big)
    assert len(made) == 1  # one of its own


# -- any layout -------------------------------------------------------------------------------------


_KEYS = st.sampled_from(["test_keys", "test_name", "probe_ip", "a", '"test_keys":', "\\", "é"]) | st.text(
    max_size=4
)
_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6)
    | st.sampled_from(['"test_keys":{', "}", ',"test_name":', "\\u0031"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_KEYS, children, max_size=3),
    max_leaves=12,
)
_LAYOUTS = [
    lambda m: orjson.dumps(m),
    lambda m: json.dumps(m).encode(),
    lambda m: json.dumps(m, ensure_ascii=False, separators=(",", ":")).encode(),
    lambda m: json.dumps(m, indent=1).encode(),
    lambda m: json.dumps(m, separators=(" ,", " : ")).encode() + b" \n",
]


@settings(max_examples=500, deadline=None)
@given(
    st.dictionaries(_KEYS, _VALUES, max_size=5),
    st.dictionaries(_KEYS, _VALUES, max_size=4),
    st.integers(0, 5),
    st.integers(0, len(_LAYOUTS) - 1),
)
@pytest.mark.parametrize(("load_line", "load_body"), [f[:2] for f in FORMS], ids=["compact", "simdjson"])
def test_load_reads_what_orjson_reads_however_the_line_is_laid_out(
    load_line: Load, load_body: Load, others: dict[str, Any], test_keys: dict[str, Any], at: int, layout: int
) -> None:
    """Keys named like test_keys elsewhere (nested, in strings), holding a NUL or a backslash,
    test_keys anywhere among the members, any layout: the members and test_keys read back as orjson
    reads the line, alone or as a submission's content, and the test_keys text is one whatever the
    layout."""
    items = [(k, v) for k, v in others.items() if k != "test_keys"]
    items.insert(min(at, len(items)), ("test_keys", test_keys))
    m = dict(items)
    line = _LAYOUTS[layout](m)
    loaded = load_line(line)
    assert as_orjson_reads(loaded) == orjson.loads(line)
    assert list(loaded) == list(orjson.loads(line))
    submission = load_body(b'{"format":"json","content":' + line + b"}")
    assert as_orjson_reads(submission["content"]) == orjson.loads(line)
    assert orjson.dumps(submission["content"]["test_keys"]) == orjson.dumps(loaded["test_keys"])
    # one text whatever the spaces and escapes; in the compact form numbers stay as their writer
    # spelled them (Python's json 1e-05, orjson 0.00001)
    same_numbers = orjson.dumps(m) if load_line is load_simdjson_form or layout == 0 else _LAYOUTS[2](m)
    assert orjson.dumps(loaded["test_keys"]) == orjson.dumps(load_line(same_numbers)["test_keys"])


@pytest.mark.parametrize(
    "m",
    [
        {"test_keys": {"q": 1}, "": [], "\x00": None},
        {"a": [], "a\x00b": None, "test_keys": {"q": 1}, "z": 1},
        {"test_keys": {"q": 1}, "a\x00": 1, "a": 2},
    ],
)
@pytest.mark.parametrize(("load_line", "load_body"), [f[:2] for f in FORMS], ids=["compact", "simdjson"])
def test_a_key_holding_a_nul_gets_its_own_value(load_line: Load, load_body: Load, m: dict[str, Any]) -> None:
    """pysimdjson looks a key up cut at its NUL: ``"a\\u0000b"`` found the value of ``"a"``.
    Such lines are read by orjson, alone and as a submission's content."""
    line = orjson.dumps(m)
    assert as_orjson_reads(load_line(line)) == m
    submission = load_body(b'{"format":"json","content":' + line + b"}")
    assert as_orjson_reads(submission["content"]) == m


def _deep(depth: int) -> bytes:
    return b"[" * depth + b"1" + b"]" * depth


#: MINIMAL's text without its test_keys and closing brace: a line's start, test_keys to follow
_HEAD = orjson.dumps({k: v for k, v in MINIMAL.items() if k != "test_keys"})[:-1]


@pytest.mark.parametrize("depth", [1020, 1021, 1022])
def test_what_only_orjson_reads_keeps_test_keys_as_text(depth: int) -> None:
    """simdjson counts the innermost value as a level, so a line orjson reads at 1,024 levels it
    refuses: orjson reads it, and test_keys is still its compact text (numbers as sent, as deep as
    it came), not Python values that orjson writes back only 254 levels deep (an outside check:
    routes answered 200 and 422 for one measurement)."""
    line = _HEAD + b',"test_keys": {"n": 1E2, "d": ' + _deep(depth) + b"}}"
    try:
        orjson.loads(line)
    except orjson.JSONDecodeError:
        pytest.skip("deeper than orjson reads")
    loaded = load(line)
    assert isinstance(loaded["test_keys"], orjson.Fragment)
    assert orjson.dumps(loaded["test_keys"]) == b'{"n":1E2,"d":' + _deep(depth) + b"}"
    body = b'{"format": "json", "content": ' + line + b"}"
    with contextlib.suppress(orjson.JSONDecodeError):  # one level more: past what orjson reads
        got = load_submission(body)["content"]["test_keys"]
        assert orjson.dumps(got) == orjson.dumps(loaded["test_keys"])


def test_a_nul_key_beside_a_key_given_twice_keeps_test_keys_as_text() -> None:
    """Such a line is read by orjson (pysimdjson looks a NUL key up cut at the NUL): its test_keys
    is still the compact text, alone or as a submission's content, so one measurement has one
    identity whichever way it comes (an outside check: a duplicate key in the submission's
    envelope beside a NUL key stored it a second time, its numbers rewritten)."""
    m = _HEAD + b',"test_keys": {"a": 1E2}}'
    odd = _HEAD + b',"test_keys": {"a": 1E2}, "k\\u0000": 1, "x": 2, "x": 3}'
    assert orjson.dumps(load(odd)["test_keys"]) == b'{"a":1E2}'
    envelope = b'{"format": "json", "z\\u0000": 1, "z": 1, "z": 2, "content": ' + m + b"}"
    assert orjson.dumps(load_submission(envelope)["content"]) == orjson.dumps(load(m))
    # test_keys itself given twice there: orjson's reading (the last), as Python values
    twice = _HEAD + b',"test_keys": {"a": 1}, "k\\u0000": 1, "test_keys": {"b": 2}}'
    assert load(twice)["test_keys"] == {"b": 2}
    content_twice = (
        b'{"format": "json", "z\\u0000": 1, "content": {"test_keys": {"a": 1}}, "content": ' + m + b"}"
    )
    assert load_submission(content_twice)["content"]["test_keys"] == {"a": 100.0}
