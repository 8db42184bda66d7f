"""The stored measurement's zstd frames: the dictionary, frames without it, and its reproducibility."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import orjson
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from reachwatch.store.compression import (
    DICTIONARY_FILES,
    DICTIONARY_ID,
    UnknownDictionary,
    compress,
    compress_many,
    decompress,
    dictionary,
)

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "ooni"
no_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"shared data not found at {DATA}")
MEASUREMENT = orjson.dumps(
    {
        "test_name": "web_connectivity",
        "input": "https://example.org/",
        "test_keys": {"requests": [{"response": {"code": 200, "body": "<html>" + "x" * 500}}]},
    }
)


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "train_zstd_dictionary", ROOT / "scripts" / "train_zstd_dictionary.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_frames_name_the_dictionary_and_come_back() -> None:
    frame = compress(MEASUREMENT)
    assert zstandard.get_frame_parameters(frame).dict_id == DICTIONARY_ID
    assert decompress(frame) == MEASUREMENT
    assert compress_many([MEASUREMENT, b"{}"]) == [frame, compress(b"{}")]


def test_frames_written_before_the_dictionary_still_decode() -> None:
    old = zstandard.ZstdCompressor(level=1).compress(MEASUREMENT)  # how stores wrote raw before it
    assert zstandard.get_frame_parameters(old).dict_id == 0
    assert decompress(old) == MEASUREMENT
    assert decompress(compress(MEASUREMENT)) == MEASUREMENT  # both kinds in one thread


def _level_1() -> zstandard.ZstdCompressor:
    """Level 1 with the dictionary, as stores wrote ``raw`` in sessions 12 to 18 (a copy of the
    dictionary: the shared one is digested for this version's parameters, which then apply)."""
    copy = zstandard.ZstdCompressionDict(
        dictionary(DICTIONARY_ID).as_bytes(), dict_type=zstandard.DICT_TYPE_FULLDICT
    )
    copy.precompute_compress(level=1)
    return zstandard.ZstdCompressor(level=1, dict_data=copy)


def test_frames_written_at_level_1_with_the_dictionary_still_decode() -> None:
    before = _level_1().compress(MEASUREMENT)
    assert zstandard.get_frame_parameters(before).dict_id == DICTIONARY_ID
    assert before != compress(MEASUREMENT)
    assert decompress(before) == MEASUREMENT


def test_a_dictionary_this_version_lacks_is_named() -> None:
    other = zstandard.train_dictionary(
        4096, [MEASUREMENT + b"%d" % i for i in range(200)], dict_id=0x52570999
    )
    frame = zstandard.ZstdCompressor(level=1, dict_data=other).compress(MEASUREMENT)
    with pytest.raises(UnknownDictionary, match=str(0x52570999)):
        decompress(frame)


def test_garbage_is_a_zstd_error() -> None:
    with pytest.raises(zstandard.ZstdError):
        decompress(b"not zstd at all")


def test_the_shipped_dictionary_is_its_file() -> None:
    assert dictionary(DICTIONARY_ID).dict_id() == DICTIONARY_ID
    assert set(DICTIONARY_FILES) == {DICTIONARY_ID}


@pytest.mark.shared_data
@no_data
def test_the_dictionary_is_what_the_script_trains() -> None:
    script = _script()
    if zstandard.ZSTD_VERSION != script.TRAINED_WITH:
        pytest.skip(f"zstd {zstandard.ZSTD_VERSION} may train other bytes than {script.TRAINED_WITH}")
    shipped = (
        ROOT / "src" / "reachwatch" / "store" / "dictionaries" / DICTIONARY_FILES[DICTIONARY_ID]
    ).read_bytes()
    assert script.train(script.samples(DATA)) == shipped


@pytest.mark.shared_data
@no_data
def test_measurements_outside_its_training_set_come_out_smaller() -> None:
    """The QA measurements (the benchmark's) were not trained on: each is smaller with it."""
    lines = (DATA / "measurements_qa_emulated.jsonl").read_bytes().splitlines()
    plain = zstandard.ZstdCompressor(level=1)
    for line in filter(None, lines):
        data = orjson.dumps(orjson.loads(line))
        assert len(compress(data)) < 0.9 * len(plain.compress(data))


@pytest.mark.shared_data
@no_data
def test_its_parameters_beat_level_1_with_the_same_dictionary() -> None:
    """The bigger hash table and window (``parameters``): smaller in all, on measurements it was
    not trained on and on the big real ones."""
    level_1 = _level_1()
    for name in ("measurements_qa_emulated.jsonl", "measurements_real.jsonl"):
        data = [orjson.dumps(orjson.loads(line)) for line in (DATA / name).read_bytes().splitlines() if line]
        ours = sum(len(compress(d)) for d in data)
        assert ours < 0.97 * sum(len(level_1.compress(d)) for d in data)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=3000) | st.text(max_size=2000).map(str.encode), max_size=40))
def test_every_frame_comes_back(items: list[bytes]) -> None:
    """Any bytes, one by one or many at once (either side of the multi-frame threshold)."""
    frames = compress_many(items)
    assert [decompress(f) for f in frames] == items
    assert frames == [compress(d) for d in items]
