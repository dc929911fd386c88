"""The Qt resource reader against a tiny .rcc writer (versions 1, 2, 3; plain and zlib entries)."""

from __future__ import annotations

import logging
import struct
import zlib

import pytest

from pix2color.data import rcc
from pix2color.data.rcc import iter_rcc


def make_rcc(
    files: dict[str, bytes],
    version: int = 3,
    compress: frozenset[str] = frozenset(),
    zstd: frozenset[str] = frozenset(),
) -> bytes:
    """A .rcc holding `files` ({"a/b.txt": bytes}); paths in `compress` are zlib-packed like rcc."""
    # Build the directory tree: dicts for folders, bytes for files.
    root: dict = {}
    for path, data in files.items():
        *folders, name = path.split("/")
        node = root
        for folder in folders:
            node = node.setdefault(folder, {})
        node[name] = (path, data)

    # Breadth-first numbering: the children of a folder are consecutive nodes, as in Qt.
    nodes: list[tuple[str, object]] = [("", root)]  # (name, dict or (path, data))
    first_child: dict[int, int] = {}
    i = 0
    while i < len(nodes):
        _, content = nodes[i]
        if isinstance(content, dict):
            first_child[i] = len(nodes)
            nodes.extend(sorted(content.items()))
        i += 1

    names = bytearray()
    data = bytearray()
    tree = bytearray()
    for index, (name, content) in enumerate(nodes):
        name_offset = len(names)
        encoded = name.encode("utf-16-be")
        names += struct.pack(">HI", len(encoded) // 2, 0x1234) + encoded
        if isinstance(content, dict):
            tree += struct.pack(">IHII", name_offset, 0x02, len(content), first_child[index])
        else:
            path, payload = content
            flags = 0
            if path in compress:
                flags = 0x01
                payload = struct.pack(">I", len(payload)) + zlib.compress(payload)
            elif path in zstd:
                flags = 0x04  # the bytes are not real zstd: the reader must not touch them
            tree += struct.pack(">IHHHI", name_offset, flags, 0, 0, len(data))
            data += struct.pack(">I", len(payload)) + payload
        if version >= 2:
            tree += struct.pack(">Q", 0)  # last-modified time

    header_size = 24 if version >= 3 else 20
    tree_offset = header_size
    data_offset = tree_offset + len(tree)
    names_offset = data_offset + len(data)
    header = b"qres" + struct.pack(">IIII", version, tree_offset, data_offset, names_offset)
    if version >= 3:
        header += struct.pack(">I", 0)  # overall flags
    return header + bytes(tree) + bytes(data) + bytes(names)


FILES = {
    "gcompris/src/activities/erase/resource/gorilla.webp": b"RIFF....WEBPVP8 " + bytes(range(256)),
    "gcompris/src/activities/erase/resource/README": b"Copyright: someone\nLicense: CC0-1.0\n",
    "gcompris/src/activities/erase/Erase.qml": b"import QtQuick 2.12\n" * 50,
    "top.txt": b"",
    "gcompris/caf\u00e9/\u00fcber.png": b"\x89PNG" + b"\x00" * 100,
}


@pytest.mark.parametrize("version", [1, 2, 3])
def test_reads_every_file_of_each_version(version):
    blob = make_rcc(FILES, version=version)
    assert dict(iter_rcc(blob)) == FILES


@pytest.mark.parametrize("version", [1, 3])
def test_zlib_compressed_entries_are_inflated(version):
    compressed = frozenset({"gcompris/src/activities/erase/Erase.qml", "top.txt"})
    blob = make_rcc(FILES, version=version, compress=compressed)
    assert dict(iter_rcc(blob)) == FILES
    # The packed file really is smaller: the entry was stored compressed.
    assert len(blob) < len(make_rcc(FILES, version=version))


def test_reads_from_a_path(tmp_path):
    path = tmp_path / "x.rcc"
    path.write_bytes(make_rcc(FILES, version=2))
    assert sorted(p for p, _ in iter_rcc(path)) == sorted(FILES)
    assert sorted(p for p, _ in iter_rcc(str(path))) == sorted(FILES)


def test_zstd_entries_are_skipped_with_a_warning(monkeypatch, caplog):
    monkeypatch.setattr(rcc, "_zstandard", None)
    zstd_path = "gcompris/src/activities/erase/Erase.qml"
    blob = make_rcc(FILES, zstd=frozenset({zstd_path}))
    with caplog.at_level(logging.WARNING, logger="pix2color.data.rcc"):
        got = dict(iter_rcc(blob))
    assert zstd_path not in got
    assert len(got) == len(FILES) - 1
    assert zstd_path in caplog.text and "zstd" in caplog.text


def test_not_an_rcc_file_says_so(tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 100)
    with pytest.raises(ValueError, match=r"photo\.jpg: not a Qt resource file \(no 'qres' magic\)"):
        list(iter_rcc(path))


def test_unknown_version_is_refused():
    blob = bytearray(make_rcc(FILES, version=3))
    blob[4:8] = struct.pack(">I", 9)
    with pytest.raises(ValueError, match="version 9 is not supported"):
        list(iter_rcc(bytes(blob)))


def test_truncated_file_raises_a_clear_error():
    blob = make_rcc(FILES, version=2)
    names_offset = struct.unpack_from(">I", blob, 16)[0]
    with pytest.raises(ValueError, match="truncated|corrupt|past the end"):
        list(iter_rcc(blob[: names_offset - 10]))
