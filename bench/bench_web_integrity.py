"""The web service's refusals from the integrity issue, against a fresh `pix2color serve`.

Sends, to 127.0.0.1 only and a bounded number of times: colour points with a 401-digit and a
5,001-digit coordinate, 100,000 points (4 MB) in the form field, a 5001x5000 photo (its header
only), and 100 wrong Bearer tokens; prints each answer's status and message (a table).

    .venv/bin/python bench/bench_web_integrity.py [--models default]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import struct
import sys
import tempfile
import time
import zlib
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from bench_abuse import request, start_server  # noqa: E402
from bench_web import multipart  # noqa: E402

GUESSES = 100  # wrong Bearer tokens, one after the other


def small_jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("L", (64, 48), 128).save(buf, "JPEG")
    return buf.getvalue()


def png_header(w: int, h: int) -> bytes:
    """A tiny file that claims to be a w x h PNG (refused before any pixel is decoded)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def colorize(port: int, points: str | None = None, image: bytes | None = None, name="a.jpg"):
    fields = {} if points is None else {"points": points}
    body, ctype = multipart(name, image or small_jpeg(), fields)
    status, _, data = request(port, "POST", "/api/v1/colorize", body, {"Content-Type": ctype})
    try:
        return status, json.loads(data)["error"]
    except (ValueError, KeyError):
        return status, f"({len(data)} bytes of image)"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", help="as for serve --models (default: the first shipped)")
    p.add_argument("--threads", type=int, help="serve --threads (default: the server's own)")
    args = p.parse_args()
    os.environ["PIX2COLOR_WEB_ADMIN_TOKEN"] = "integrity-bench-" + os.urandom(8).hex()
    point = '{"points": [{"x": 1%s, "y": 1, "color": "#2050c0"}]}'
    many = json.dumps({"points": [{"x": 1, "y": 1, "color": "#2050c0"}] * 100_000})
    with tempfile.TemporaryDirectory() as instance:
        server, port = start_server(args, instance)
        try:
            rows = [
                ("x with 401 digits", *colorize(port, point % ("0" * 400))),
                ("x with 5,001 digits", *colorize(port, point % ("0" * 5000))),
                (f"100,000 points ({len(many) / 1e6:.1f} MB)", *colorize(port, many)),
                ("a 5001x5000 photo", *colorize(port, None, png_header(5001, 5000), "w.png")),
            ]
            codes, t = [], time.perf_counter()
            for i in range(GUESSES):
                status, _, data = request(
                    port, "GET", "/admin/stats.json", headers={"Authorization": f"Bearer g{i}"}
                )
                codes.append(status)
            seconds = time.perf_counter() - t
            answered = ", ".join(f"{codes.count(c)}x {c}" for c in sorted(set(codes)))
            rows.append(
                (f"{GUESSES} wrong Bearer tokens", answered, f"in {seconds:.2f} s; the last: "
                 f"{json.loads(data)['error']}")
            )  # fmt: skip
        finally:
            server.terminate()
            server.wait(timeout=30)
    print("| request | status | answer |")
    print("|---|---|---|")
    for what, status, message in rows:
        print(f"| {what} | {status} | {message} |")


if __name__ == "__main__":
    main()
