"""Read the files packed inside a Qt resource file (.rcc), format versions 1, 2 and 3.

Layout (all integers big-endian): the magic ``qres``, then u32 version, tree offset, data offset
and names offset (version 3 adds a u32 of overall flags). The tree is an array of nodes, 14 bytes
each in version 1 and 22 bytes from version 2 (an extra u64 modification time):

    u32 name offset, u16 flags, then either
      directory (flags & 2): u32 child count, u32 index of the first child node
      file:                  u16 territory, u16 language, u32 data offset

A name is a u16 length, a u32 hash and that many UTF-16BE code units. A data entry is a u32 size
and the bytes; with flag 1 they are zlib-compressed behind a 4-byte big-endian length (Qt's
``qCompress``); with flag 4 they are a zstd frame.
"""

from __future__ import annotations

import logging
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

logger = logging.getLogger(__name__)

MAGIC = b"qres"
FLAG_COMPRESSED = 0x01
FLAG_DIRECTORY = 0x02
FLAG_COMPRESSED_ZSTD = 0x04

try:  # zstd entries are rare (Qt >= 5.13 built with zstd); decode them only if we can
    import zstandard as _zstandard
except ImportError:  # pragma: no cover - depends on the environment
    _zstandard = None


def iter_rcc(source: str | Path | bytes) -> Iterator[tuple[str, bytes]]:
    """Yield (resource path like "gcompris/src/x.webp", file bytes) for every file in a .rcc."""
    if isinstance(source, bytes | bytearray | memoryview):
        blob, label = bytes(source), "<bytes>"
    else:
        blob, label = Path(source).read_bytes(), str(source)
    reader = _RccReader(blob, label)
    yield from reader.walk(0, "")


class _RccReader:
    """Offsets and bounds-checked access to one .rcc blob."""

    def __init__(self, blob: bytes, label: str):
        self.blob, self.label = blob, label
        if len(blob) < 20 or blob[:4] != MAGIC:
            raise ValueError(f"{label}: not a Qt resource file (no 'qres' magic)")
        self.version, self.tree, self.data, self.names = struct.unpack_from(">4I", blob, 4)
        if self.version not in (1, 2, 3):
            raise ValueError(
                f"{label}: Qt resource format version {self.version} is not supported "
                "(this reader knows versions 1, 2 and 3)"
            )
        self.node_size = 14 if self.version == 1 else 22
        for name, offset in (("tree", self.tree), ("data", self.data), ("names", self.names)):
            if offset >= len(blob):
                raise ValueError(
                    f"{label}: {name} offset {offset} is past the end of the file "
                    f"({len(blob)} bytes); the .rcc file is truncated or corrupt"
                )

    def _unpack(self, fmt: str, offset: int) -> tuple:
        try:
            return struct.unpack_from(fmt, self.blob, offset)
        except struct.error:
            raise ValueError(
                f"{self.label}: read past the end of the file at offset {offset}; "
                "the .rcc file is truncated or corrupt"
            ) from None

    def name(self, name_offset: int) -> str:
        """The node name stored at `name_offset` in the names table."""
        start = self.names + name_offset
        (length,) = self._unpack(">H", start)
        raw = self.blob[start + 6 : start + 6 + 2 * length]
        if len(raw) != 2 * length:
            raise ValueError(f"{self.label}: name at offset {start} runs past the end of the file")
        return raw.decode("utf-16-be")

    def walk(self, index: int, prefix: str, depth: int = 0) -> Iterator[tuple[str, bytes]]:
        """Yield the files under tree node `index`, whose path so far is `prefix`."""
        if depth > 64:
            raise ValueError(f"{self.label}: resource tree is deeper than 64 levels (corrupt?)")
        node = self.tree + index * self.node_size
        name_offset, flags = self._unpack(">IH", node)
        # The root node's name is empty by convention; its children start the path.
        path = ""
        if index != 0:
            path = f"{prefix}/{self.name(name_offset)}" if prefix else self.name(name_offset)
        if flags & FLAG_DIRECTORY:
            count, first = self._unpack(">II", node + 6)
            for child in range(first, first + count):
                yield from self.walk(child, path, depth + 1)
            return
        (data_offset,) = self._unpack(">I", node + 10)
        payload = self.payload(self.data + data_offset, path)
        if flags & FLAG_COMPRESSED_ZSTD:
            if _zstandard is None:
                logger.warning(
                    "%s: skipping %s, it is zstd-compressed; pip install zstandard to read it",
                    self.label,
                    path,
                )
                return
            payload = _zstandard.ZstdDecompressor().decompress(payload, max_output_size=1 << 31)
        elif flags & FLAG_COMPRESSED:
            if len(payload) < 4:
                raise ValueError(f"{self.label}: compressed entry {path} is shorter than 4 bytes")
            try:
                payload = zlib.decompress(payload[4:])
            except zlib.error as err:
                raise ValueError(
                    f"{self.label}: entry {path} is not valid zlib data ({err})"
                ) from None
        yield path, payload

    def payload(self, offset: int, path: str) -> bytes:
        """The raw (possibly compressed) bytes of the data entry at absolute `offset`."""
        (size,) = self._unpack(">I", offset)
        raw = self.blob[offset + 4 : offset + 4 + size]
        if len(raw) != size:
            raise ValueError(
                f"{self.label}: entry {path} claims {size} bytes but the file ends after "
                f"{len(raw)}; the .rcc file is truncated"
            )
        return raw
