"""Waitress's own refusals come back as the app's answers: a body over the limit is JSON 413.

A real waitress server (pix2color.web.server.make_server, as `pix2color serve` builds it) on a
free loopback port, in a thread, spoken to over a raw socket: the requests announce bodies they
never send, or send chunked ones, as an attacker or a careless client would.
"""

from __future__ import annotations

import json
import socket
import threading

import pytest

from pix2color.web.server import make_server
from tests.web.conftest import photo_bytes

MB = 2**20


@pytest.fixture
def served(app):
    """The test app (2 MB limit) on waitress -> its port."""
    server = make_server(app, host="127.0.0.1", port=0, threads=2, ident="pix2color")
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield server.effective_port
    server.close()
    server.task_dispatcher.shutdown()
    thread.join(10)


def exchange(port: int, head: str, body: bytes = b"", chunked: bytes | None = None):
    """Send a request, read the answer until the server closes -> (status, headers, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        if chunked is not None:
            try:
                for i in range(0, len(chunked), 64 * 1024):
                    piece = chunked[i : i + 64 * 1024]
                    s.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
                s.sendall(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass  # refused before the end: the answer is waiting
        data = b""
        try:
            while chunk := s.recv(65536):
                data += chunk
        except ConnectionResetError:
            pass
    head_part, _, payload = data.partition(b"\r\n\r\n")
    lines = head_part.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, payload


def test_a_body_over_the_limit_gets_the_apps_json_413_unread(served):
    # 120 MB announced, none sent: waitress refuses from the header, in the app's words
    head = (
        "POST /api/v1/colorize HTTP/1.1\nHost: localhost\n"
        "Content-Type: multipart/form-data; boundary=x\n"
        f"Content-Length: {120 * MB}\n"
    )
    status, headers, body = exchange(served, head)
    assert status == 413
    assert headers["content-type"] == "application/json"
    assert headers["server"] == "pix2color"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == "private, no-store"
    answer = json.loads(body)
    assert answer["status"] == 413
    assert "larger than this server's limit of 2 MB" in answer["error"]
    assert "waitress" not in body.decode()


def test_one_byte_over_is_refused_and_the_limit_itself_is_not(served):
    over = "POST /api/v1/colorize HTTP/1.1\nHost: localhost\nContent-Length: {}\n"
    status, headers, _ = exchange(served, over.format(2 * MB + 1))
    assert status == 413 and headers["content-type"] == "application/json"


def test_a_chunked_body_over_the_limit_is_json_413_too(served):
    head = (
        "POST /api/v1/colorize HTTP/1.1\nHost: localhost\n"
        "Content-Type: multipart/form-data; boundary=x\nTransfer-Encoding: chunked\n"
    )
    status, headers, body = exchange(served, head, chunked=b"x" * (3 * MB))
    assert status == 413 and json.loads(body)["status"] == 413


def test_a_person_s_browser_gets_the_error_page(served):
    head = (
        "POST /jobs HTTP/1.1\nHost: localhost\nAccept: text/html\n"
        "Content-Type: multipart/form-data; boundary=x\n"
        f"Content-Length: {120 * MB}\n"
    )
    status, headers, body = exchange(served, head)
    assert status == 413 and headers["content-type"].startswith("text/html")
    assert b"limit of 2 MB" in body and b"<html" in body


def test_other_waitress_refusals_are_json_for_the_api(served):
    head = "POST /api/v1/colorize HTTP/1.1\nHost: localhost\nContent-Length: nope\n"
    status, headers, body = exchange(served, head)
    assert status == 400 and json.loads(body)["status"] == 400


def test_uploads_within_the_limit_still_work(served):
    photo = photo_bytes()
    body = (
        b'--x\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n'
        b"Content-Type: image/jpeg\r\n\r\n" + photo + b"\r\n--x--\r\n"
    )
    head = (
        "POST /api/v1/colorize HTTP/1.1\nHost: localhost\nConnection: close\n"
        f"Content-Type: multipart/form-data; boundary=x\nContent-Length: {len(body)}\n"
    )
    status, headers, payload = exchange(served, head, body)
    assert status == 200 and headers["content-type"] == "image/png"
    assert payload.startswith(b"\x89PNG")


@pytest.mark.parametrize("trusted", [0, 1])
def test_forwarded_headers_reach_the_app_through_waitress_only_when_trusted(make_app, trusted):
    """waitress drops X-Forwarded-* by default; behind a trusted proxy the app needs them."""
    app = make_app({"TRUSTED_PROXIES": trusted})
    server = make_server(app, host="127.0.0.1", port=0, threads=2)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        status, headers, _ = exchange(
            server.effective_port,
            "GET / HTTP/1.1\nHost: x\nX-Forwarded-Proto: https\nX-Forwarded-For: 203.0.113.7\n"
            "Connection: close\n",
        )
    finally:
        server.close()
        server.task_dispatcher.shutdown()
        thread.join(10)
    assert status == 200
    assert ("Secure" in headers["set-cookie"]) == bool(trusted)
