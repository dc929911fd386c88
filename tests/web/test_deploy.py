"""docs/nginx-pix2color.conf works: nginx accepts it, and in front of the app it terminates
HTTPS (the session cookie is Secure through X-Forwarded-Proto), redirects HTTP, passes
/healthz, and answers a client over its rating rate with 429."""

from __future__ import annotations

import http.client
import os
import re
import shutil
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest

from pix2color.web.server import make_server
from tests.web.conftest import free_port

CONF = Path(__file__).parents[2] / "docs" / "nginx-pix2color.conf"
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)

MISSING = NGINX is None or shutil.which("openssl") is None
REASON = "nginx and openssl are needed: apt-get install nginx-light openssl"


@pytest.fixture(autouse=True)
def _needs_nginx():
    if MISSING:
        if os.environ.get("CI"):
            pytest.fail(f"{REASON} (.ci/run installs them, so CI must have them)")
        pytest.skip(REASON)


def nginx_config(tmp: Path, app_port: int) -> tuple[Path, int, int]:
    """The documented file with this test's ports and a self-signed certificate."""
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
         "/CN=photos.example.org", "-keyout", tmp / "key.pem", "-out", tmp / "cert.pem"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    http_port, https_port = free_port(), free_port()
    site = CONF.read_text()
    site = re.sub(r"server 127\.0\.0\.1:8001;\n\s*server 127\.0\.0\.1:8002;",
                  f"server 127.0.0.1:{app_port};", site)  # fmt: skip
    site = site.replace("listen 80;", f"listen 127.0.0.1:{http_port};")
    site = site.replace("listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;")
    site = re.sub(r"\n\s*listen \[::\]:\d+[^;]*;", "", site)
    site = site.replace(
        "/etc/letsencrypt/live/photos.example.org/fullchain.pem", str(tmp / "cert.pem")
    )
    site = site.replace(
        "/etc/letsencrypt/live/photos.example.org/privkey.pem", str(tmp / "key.pem")
    )
    (tmp / "site.conf").write_text(site)
    user = "user root;\n" if os.geteuid() == 0 else ""
    (tmp / "nginx.conf").write_text(
        f"{user}worker_processes 1;\npid {tmp}/nginx.pid;\nerror_log {tmp}/error.log;\n"
        "events { worker_connections 256; }\n"
        f"http {{\n access_log off;\n client_body_temp_path {tmp}/body;\n"
        f" proxy_temp_path {tmp}/proxy;\n include {tmp}/site.conf;\n}}\n"
    )
    return tmp / "nginx.conf", http_port, https_port


@pytest.fixture
def proxied(make_app, tmp_path):
    app = make_app({"TRUSTED_PROXIES": 1, "RATINGS_PER_MINUTE": 1000})
    server = make_server(app, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    conf, http_port, https_port = nginx_config(tmp_path, server.effective_port)
    check = subprocess.run([NGINX, "-t", "-c", conf, "-p", tmp_path], capture_output=True,
                           text=True, timeout=30)  # fmt: skip
    assert check.returncode == 0, check.stderr
    proc = subprocess.Popen([NGINX, "-c", conf, "-p", tmp_path, "-g", "daemon off;"],
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.time() + 20
        while True:
            try:
                http.client.HTTPConnection("127.0.0.1", http_port, timeout=1).connect()
                break
            except OSError:
                assert time.time() < deadline and proc.poll() is None, proc.stderr.read()
                time.sleep(0.1)
        yield http_port, https_port
    finally:
        proc.terminate()
        proc.wait(timeout=20)

        def close_all():
            for dispatcher in list(server._map.values()):
                dispatcher.close()

        server.trigger.pull_trigger(close_all)
        thread.join(10)
        server.task_dispatcher.shutdown()


def https(port: int, method: str, path: str, body=None, headers=None):
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # self-signed
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=30, context=context)
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, r.headers, data


def test_the_documented_nginx_config_in_front_of_the_app(proxied):
    http_port, https_port = proxied
    plain = http.client.HTTPConnection("127.0.0.1", http_port, timeout=10)
    plain.request("GET", "/", headers={"Host": "photos.example.org"})
    r = plain.getresponse()
    assert r.status == 301 and r.headers["Location"] == "https://photos.example.org/"
    status, headers, _ = https(https_port, "GET", "/")
    assert status == 200
    cookie = headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie  # X-Forwarded-Proto believed
    assert "max-age=31536000" in headers["Strict-Transport-Security"]
    assert https(https_port, "GET", "/healthz")[0] == 200
    codes = [
        https(https_port, "POST", "/api/v1/ratings", b"{}", {"Content-Type": "application/json"})[0]
        for _ in range(15)
    ]
    assert codes[:11] == [400] * 11 and codes[-1] == 429  # burst 10 + 1, then nginx's 429
