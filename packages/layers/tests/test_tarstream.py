"""The fast tar reader must read exactly what tarfile reads, for every header format tarfile writes."""

import io
import tarfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hpcbox_layers.tarstream import ForwardReader, members

chars = st.characters(blacklist_categories=("Cs",), blacklist_characters="/\0")
name_parts = st.text(chars, min_size=1, max_size=40)
names = st.lists(name_parts, min_size=1, max_size=8).map("/".join)
kinds = st.sampled_from([tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.FIFOTYPE,
                         tarfile.CHRTYPE, tarfile.CONTTYPE])  # fmt: skip
members_st = st.lists(
    st.tuples(
        names,
        kinds,
        st.integers(0, 0o7777),
        st.integers(0, 2**24),  # above 0o7777777: base-256 in GNU format, pax record in PAX
        st.integers(-(2**33), 2**33),
        names,
        st.binary(max_size=700),
    ),
    max_size=8,
)


def build(entries, fmt):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt, encoding="utf-8") as tf:
        for name, kind, mode, uid, mtime, link, data in entries:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.uid, info.gid, info.mtime = kind, mode, uid, uid // 3, mtime
            if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
                info.linkname = link
            if kind == tarfile.CHRTYPE:
                info.devmajor, info.devminor = uid % 4096, mode
            payload = data if kind in (tarfile.REGTYPE, tarfile.CONTTYPE) else b""
            info.size = len(payload)
            try:
                tf.addfile(info, io.BytesIO(payload))
            except ValueError:
                pass  # a field this format cannot hold
    return buf.getvalue()


def reference(blob):
    out = []
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r|", encoding="utf-8") as tf:
        for info in tf:
            data = tf.extractfile(info).read() if info.isreg() else None
            out.append((info.get_info(), info.pax_headers, data))
    return out


def ours(blob):
    out = []
    for info, reader, _tf in members(io.BufferedReader(io.BytesIO(blob))):
        data = reader.read(info.size) if info.isreg() else None
        out.append((info.get_info(), info.pax_headers, data))
    return out


FORMATS = [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT]


@settings(max_examples=150, deadline=None)
@given(entries=members_st, fmt=st.sampled_from(FORMATS))
def test_reads_exactly_what_tarfile_reads(entries, fmt):
    blob = build(entries, fmt)
    assert ours(blob) == reference(blob)


def test_signed_checksums_and_damaged_headers_go_to_tarfile():
    blob = bytearray(build([("é" * 30, tarfile.REGTYPE, 0o644, 0, 0, "", b"x")], tarfile.GNU_FORMAT))
    # A header whose checksum was computed with signed chars (old Sun tar): only tarfile's parser knows it.
    header = blob[:512]
    header[148:156] = b" " * 8
    signed = 256 + sum((b - 256 if b > 127 else b) for b in header[:148] + header[156:])
    blob[148:156] = b"%06o\0 " % signed
    assert ours(bytes(blob))[0][0]["name"] == "é" * 30
    blob[0] ^= 1
    with pytest.raises(tarfile.ReadError):
        ours(bytes(blob))


def test_forward_reader_refuses_to_seek_back():
    r = ForwardReader(io.BytesIO(b"0123456789"))
    assert r.read(3) == b"012"
    assert r.seek(6) == 6 and r.read(2) == b"67"
    with pytest.raises(io.UnsupportedOperation):
        r.seek(0)


def test_ordinary_headers_take_the_fast_path(monkeypatch):
    blob = build([("usr/bin/x", tarfile.REGTYPE, 0o755, 0, 1_700_000_000, "", b"#!")], tarfile.PAX_FORMAT)
    calls = []
    original = tarfile.TarInfo.frombuf.__func__

    def spy(cls, buf, encoding, errors):
        calls.append(buf[:20])
        return original(cls, buf, encoding, errors)

    monkeypatch.setattr(tarfile.TarInfo, "frombuf", classmethod(spy))
    assert [i[0]["name"] for i in ours(blob)] == ["usr/bin/x"]
    assert calls == [bytes(512)[:20]]  # only the end-of-archive block, which tarfile must judge
