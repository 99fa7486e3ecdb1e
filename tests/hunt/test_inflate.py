"""`inflate` reads every gzip form the hunt meets and never mistakes a damaged file for an empty one."""

from __future__ import annotations

import gzip
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eksir.hunt.decode import DecodeError, inflate

PAYLOAD = b'{"Records": [' + b",".join(b'{"eventVersion": "1.08", "n": %d}' % n for n in range(2000)) + b"]}"


def test_single_member_file_is_inflated() -> None:
    assert inflate(gzip.compress(PAYLOAD, mtime=0)) == PAYLOAD


def test_concatenated_members_are_all_read() -> None:
    """gzip allows several members in one file (e.g. `cat a.gz b.gz`); every member's data comes back."""
    assert inflate(gzip.compress(b"first ", mtime=0) + gzip.compress(b"second", mtime=0)) == b"first second"


def test_empty_payload_is_empty() -> None:
    assert inflate(gzip.compress(b"", mtime=0)) == b""


def test_plain_bytes_pass_through() -> None:
    assert inflate(PAYLOAD) is PAYLOAD


@pytest.mark.parametrize("cut", [30, 60, 200, -5, -1])
def test_cut_file_is_an_error_not_empty_or_short(cut: int) -> None:
    """A cut file whose last four bytes read as size 0 made libdeflate answer b'' without inflating."""
    data = gzip.compress(PAYLOAD, mtime=0)
    with pytest.raises(DecodeError, match="gzip"):
        inflate(data[:cut])


def test_corrupt_stream_is_an_error() -> None:
    data = bytearray(gzip.compress(PAYLOAD, mtime=0))
    data[40:60] = b"\xff" * 20
    with pytest.raises(DecodeError, match="gzip"):
        inflate(bytes(data))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=4096), st.integers(min_value=0, max_value=9))
def test_any_payload_round_trips(payload: bytes, level: int) -> None:
    assert inflate(gzip.compress(payload, compresslevel=level, mtime=0)) == payload
    stream = zlib.compressobj(level, zlib.DEFLATED, 31)  # a gzip member written by zlib, as other tools do
    assert inflate(stream.compress(payload) + stream.flush()) == payload
