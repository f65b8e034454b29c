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
            out.append((info.get_info(), info.name, info.pax_headers, data))
    return out


def ours(blob):
    out = []
    for info, reader, _tf in members(io.BufferedReader(io.BytesIO(blob))):
        data = reader.read(info.size) if info.isreg() else None
        out.append((info.get_info(), info.name, info.pax_headers, data))
    return out


FORMATS = [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT]


@settings(max_examples=150, deadline=None)
@given(entries=members_st, fmt=st.sampled_from(FORMATS))
def test_reads_exactly_what_tarfile_reads(entries, fmt):
    blob = build(entries, fmt)
    assert ours(blob) == reference(blob)


# pax extended headers on every member, as GNU tar --format=posix writes them (mtime/atime/ctime with
# fractions, xattrs), mixed with records the fast path must leave to tarfile (hdrcharset, GNU sparse
# keys, unknown keys) and global headers.
numbers_text = st.one_of(
    st.integers(-(2**40), 2**40).map(str),
    st.floats(-1e12, 1e12, allow_nan=False).map(repr),
    st.sampled_from(["", "x", "1.5", " 7", "0_1"]),
)
# Python < 3.12 takes "<n> hdrcharset=<v>\n" from anywhere in the header, even inside a value.
pax_values = st.one_of(st.text(st.characters(blacklist_categories=("Cs",)), max_size=30),
                       st.just("x 1 hdrcharset=BINARY\n"))  # fmt: skip
NUMBER_KEYS = ("mtime", "atime", "ctime", "uid", "gid")
pax_keys = [*NUMBER_KEYS, "uname", "gname", "path", "linkpath", "SCHILY.xattr.user.a",
            "SCHILY.xattr.security.capability", "LIBARCHIVE.xattr.b", "comment", "hdrcharset",
            "GNU.sparse.name", "x=y", "a\nb"]  # fmt: skip
pax_records = st.dictionaries(st.sampled_from(pax_keys), pax_values, max_size=5).flatmap(
    lambda d: st.fixed_dictionaries({k: numbers_text for k in d if k in NUMBER_KEYS}).map(
        lambda nums, d=d: {**d, **nums}
    )
)
pax_members_st = st.lists(st.tuples(members_st.filter(bool).map(lambda m: m[0]), pax_records), max_size=6)


def build_pax(entries, global_headers):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT, pax_headers=global_headers) as tf:
        for (name, kind, mode, uid, mtime, link, data), records in entries:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.uid, info.mtime = kind, mode, uid, mtime
            if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
                info.linkname = link
            payload = data if kind in (tarfile.REGTYPE, tarfile.CONTTYPE) else b""
            info.size = len(payload)
            info.pax_headers = records
            tf.addfile(info, io.BytesIO(payload))
    return buf.getvalue()


def outcome(read, blob):
    try:
        return read(blob)
    except (tarfile.TarError, ValueError) as e:
        return type(e).__name__


@settings(max_examples=200, deadline=None)
@given(entries=pax_members_st, global_headers=st.one_of(st.none(), st.just({}), pax_records))
def test_reads_exactly_what_tarfile_reads_with_pax_headers(entries, global_headers):
    blob = build_pax(entries, global_headers)
    assert outcome(ours, blob) == outcome(reference, blob)


record_keys = st.sampled_from(["mtime", "path", "size", "SCHILY.xattr.user.q", "hdrcharset", "zz"])
record = st.one_of(
    st.tuples(record_keys, pax_values).map(lambda kv: b"%s=%s\n" % (kv[0].encode(), kv[1].encode())),
    st.binary(max_size=12),
)


@settings(max_examples=200, deadline=None)
@given(
    records=st.lists(st.tuples(record, st.integers(-3, 3)), max_size=4),
    padding=st.binary(max_size=3),
    data=st.binary(max_size=600),
)
def test_damaged_pax_records_read_as_tarfile_reads_them(records, padding, data):
    """Hand-made pax headers with wrong lengths, missing newlines, junk and binary values."""
    body = b"".join(b"%d %s" % (len(r) + len(str(len(r))) + 1 + delta, r) for r, delta in records) + padding
    pax = tarfile.TarInfo("PaxHeaders/f")
    pax.type, pax.size = tarfile.XHDTYPE, len(body)
    member = tarfile.TarInfo("f")
    member.size = len(data)
    blob = b"".join([
        pax.tobuf(tarfile.USTAR_FORMAT), body, bytes(-len(body) % 512),
        member.tobuf(tarfile.USTAR_FORMAT), data, bytes(-len(data) % 512), bytes(1024),
    ])  # fmt: skip
    assert outcome(ours, blob) == outcome(reference, blob)


def test_gnu_posix_headers_take_the_fast_path(monkeypatch):
    """Every member behind its own pax header, as GNU tar writes them: no tarfile parsing at all."""
    entries = [(("usr/lib/é" * 20, tarfile.REGTYPE, 0o644, 0, 1_700_000_000, "", b"abc"),
                {"mtime": "1700000000.123456789", "atime": "1.5", "ctime": "2", "SCHILY.xattr.user.k": "v"})]
    blob = build_pax(entries * 3, None)  # fmt: skip
    calls = []
    monkeypatch.setattr(tarfile.TarInfo, "_proc_pax", lambda *a: calls.append(a))
    got = ours(blob)
    assert [(i["name"], i["mtime"], i["size"], p["SCHILY.xattr.user.k"], d) for i, _n, p, d in got] == [
        ("usr/lib/é" * 20, 1700000000.1234567, 3, "v", b"abc")
    ] * 3
    assert calls == []


def test_directory_name_only_in_the_ustar_prefix():
    """A long directory name that ustar puts whole in the prefix field (the name field left empty)."""
    blob = build([("d" * 120, tarfile.DIRTYPE, 0o755, 0, 0, "", b"")], tarfile.USTAR_FORMAT)
    assert blob[:1] == b"\0" and ours(blob) == reference(blob)
    assert ours(blob)[0][0]["name"] == "d" * 120 + "/"  # get_info() gives directories a slash


def test_hdrcharset_inside_a_value_is_left_to_tarfile():
    """Python < 3.12 finds "<n> hdrcharset=" anywhere in a pax header, even inside another value."""
    entry = ("f", tarfile.REGTYPE, 0o644, 0, 0, "", b"x")
    records = {"path": "a\n1 hdrcharset=BINARY\n", "SCHILY.xattr.user.k": "1 hdrcharset=X\n"}
    blob = build_pax([(entry, records)], None)
    assert ours(blob) == reference(blob)


def test_size_of_a_member_without_data_is_ignored():
    """A symlink or directory header with a size: no data follows it, the next header comes next."""
    link = tarfile.TarInfo("l")
    link.type, link.linkname, link.size = tarfile.SYMTYPE, "t", 1024
    header = bytearray(link.tobuf(tarfile.USTAR_FORMAT))
    files = build([("f", tarfile.REGTYPE, 0o644, 0, 0, "", b"data")], tarfile.USTAR_FORMAT)
    blob = bytes(header) + files
    assert [m[1] for m in ours(blob)] == ["l", "f"] and ours(blob) == reference(blob)


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
