"""The service under abuse: load, idle connections, parallel big downloads, memory after bursts.

Starts `pix2color serve` (waitress) on a free loopback port in a subprocess, with the code on
PYTHONPATH (so `PYTHONPATH=<older src>` measures older code), and runs, each bounded:

- `load`: `--clients` clients (each from its own loopback address; after a 503 it waits 1 s)
  post grey JPEGs (scikit-image's photos) to POST /api/v1/colorize
  until `--requests` are done; throughput, p50/p95 of the successful ones, errors by status,
  the server's peak RSS, and /healthz's p50/p95 from another address (127.0.0.2) meanwhile,
  polled every 0.2 s (the target: under 100 ms).
- `idle`: one client (127.0.0.1) opens `--idle` connections and sends nothing; how many the
  server keeps open, and /healthz from another client (timeout 5 s, 3 tries).
- `downloads`: a 25 MP grey photo through the page (one model), then `--downloads` parallel
  `GET /results/<id>/download?format=jpeg`; each one's time, and /healthz meanwhile.
- `burst`: the server's RSS when idle, right after `--burst` API colourings of a 12 MP photo
  (4 clients), and 3 s later.

Run: `python bench/bench_abuse.py [--models default] [--scenarios load idle downloads burst]`
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from PIL import Image
from skimage import data as skdata

sys.path.insert(0, str(Path(__file__).parent))
from bench_web import free_port, multipart, photos, rss_mb  # noqa: E402

OTHER = "127.0.0.2"  # the /healthz prober: another client than the load's 127.0.0.1


def request(port, method, path, body=b"", headers=None, source="127.0.0.1", timeout=60.0):
    conn = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=timeout, source_address=(source, 0)
    )
    try:
        conn.request(method, path, body=body or None, headers=headers or {})
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        conn.close()


class Prober:
    """Polls /healthz from another address every `every` s; latencies of 200s and failures."""

    def __init__(self, port: int, every: float = 0.2, timeout: float = 30.0) -> None:
        self.port, self.every, self.timeout = port, every, timeout
        self.latencies: list[float] = []
        self.failures: Counter = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            t = time.perf_counter()
            try:
                status, _, _ = request(
                    self.port, "GET", "/healthz", source=OTHER, timeout=self.timeout
                )
                if status == 200:
                    self.latencies.append(time.perf_counter() - t)
                else:
                    self.failures[status] += 1
            except OSError as e:
                self.failures[type(e).__name__] += 1
            self._stop.wait(self.every)

    def __enter__(self) -> Prober:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(self.timeout + 5)

    def summary(self) -> str:
        lat = sorted(self.latencies)
        if not lat:
            return f"no answer ({dict(self.failures)})"
        p50 = statistics.median(lat) * 1000
        p95 = lat[min(len(lat) - 1, int(0.95 * len(lat)))] * 1000
        fails = f", {sum(self.failures.values())} failed" if self.failures else ""
        return f"p50 {p50:.0f} ms, p95 {p95:.0f} ms ({len(lat)} probes{fails})"


def jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def big_photo(width: int, height: int) -> bytes:
    return jpeg(Image.fromarray(skdata.astronaut()).convert("L").resize((width, height)))


def run_clients(port, pid, clients, total, bodies, path="/api/v1/colorize"):
    """`clients` clients, each from its own loopback address (127.0.1.N), post `bodies` in
    turn until `total` requests are done -> (latencies of 200s, statuses, wall, peak RSS)."""
    lock = threading.Lock()
    state = {"started": 0, "peak": 0.0}
    latencies: list[float] = []
    statuses: Counter = Counter()
    stop = threading.Event()

    def sampler() -> None:
        while not stop.is_set():
            state["peak"] = max(state["peak"], rss_mb(pid)[0])
            stop.wait(0.1)

    def client(i: int) -> None:
        while True:
            with lock:
                if state["started"] >= total:
                    return
                n = state["started"]
                state["started"] += 1
            body, ctype = bodies[n % len(bodies)]
            t = time.perf_counter()
            try:
                st, _, _ = request(
                    port, "POST", path, body, {"Content-Type": ctype}, f"127.0.1.{i + 1}", 120
                )
            except OSError as e:
                st = type(e).__name__
            with lock:
                statuses[st] += 1
                if st == 200:
                    latencies.append(time.perf_counter() - t)
                elif st == 503:
                    time.sleep(1.0)  # what Retry-After asks, roughly

    watcher = threading.Thread(target=sampler, daemon=True)
    watcher.start()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    stop.set()
    watcher.join()
    return latencies, statuses, wall, state["peak"]


def scenario_load(port, pid, args) -> None:
    bodies = [
        multipart(name, data, {"size": str(args.size), "format": "jpeg"})
        for name, data in photos(False)
    ]
    run_clients(port, pid, 1, 2, bodies)  # warm-up
    with Prober(port) as probe:
        lat, statuses, wall, peak = run_clients(port, pid, args.clients, args.requests, bodies)
    errors = {k: v for k, v in statuses.items() if k != 200}
    err = ", ".join(f"{v}x {k}" for k, v in sorted(errors.items(), key=str)) or "0"
    q = statistics.quantiles(lat, n=20) if len(lat) >= 2 else [float("nan")] * 19
    print(
        f"| load: {args.clients} clients (one address each), {sum(statuses.values())} "
        f"requests | {len(lat) / wall:.2f} req/s ok, p50 {statistics.median(lat) * 1000:.0f} ms, "
        f"p95 {q[18] * 1000:.0f} ms, errors {err}, peak RSS {peak:.0f} MB | {probe.summary()} |"
    )


def scenario_idle(port, pid, args) -> None:
    idle = []
    for _ in range(args.idle):
        try:
            idle.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        except OSError:
            break
    time.sleep(1.0)
    kept = 0
    for s in idle:  # still open on the server's side? (closed ones read as b"" at once)
        s.setblocking(False)
        try:
            kept += s.recv(1, socket.MSG_PEEK) != b""
        except BlockingIOError:
            kept += 1
        except OSError:
            pass
    probe = Prober(port, every=0.0, timeout=5.0)
    for _ in range(3):
        probe._stop.clear()
        t = time.perf_counter()
        try:
            status, _, _ = request(port, "GET", "/healthz", source=OTHER, timeout=5.0)
            if status == 200:
                probe.latencies.append(time.perf_counter() - t)
            else:
                probe.failures[status] += 1
        except OSError as e:
            probe.failures[type(e).__name__] += 1
    for s in idle:
        s.close()
    print(
        f"| idle: {len(idle)} connections from one client, nothing sent | "
        f"{kept} kept open by the server | {probe.summary()} |"
    )


def scenario_downloads(port, pid, args) -> None:
    status, headers, html = request(port, "GET", "/")
    cookie = headers.get("Set-Cookie", "").split(";", 1)[0]
    token = re.search(rb'name="csrf-token" content="([^"]+)"', html).group(1).decode()
    body, ctype = multipart("big.jpg", big_photo(6000, 4166), {"size": str(args.size)})
    status, _, data = request(
        port,
        "POST",
        "/jobs",
        body,
        {
            "Content-Type": ctype,
            "Cookie": cookie,
            "X-CSRF-Token": token,
            "Accept": "application/json",
        },
        timeout=300,
    )
    assert status == 201, data[:300]
    rid = re.findall(r'data-result="([^"]+)"', json.loads(data)["html"])[0]
    times: list[float] = []
    statuses: Counter = Counter()
    lock = threading.Lock()

    def download() -> None:
        t = time.perf_counter()
        try:
            st, _, payload = request(
                port, "GET", f"/results/{rid}/download?format=jpeg", timeout=300
            )
        except OSError as e:
            st = type(e).__name__
        with lock:
            statuses[st] += 1
            if st == 200:
                times.append(time.perf_counter() - t)

    threads = [threading.Thread(target=download) for _ in range(args.downloads)]
    t0 = time.perf_counter()
    with Prober(port, every=0.1) as probe:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    wall = time.perf_counter() - t0
    ok = sorted(times)
    print(
        f"| downloads: {args.downloads} parallel JPEGs of one 25 MP result | "
        f"{dict(statuses)}, each {ok[0]:.1f}-{ok[-1]:.1f} s (median "
        f"{statistics.median(ok):.1f} s), all in {wall:.1f} s | {probe.summary()} |"
    )


def scenario_burst(port, pid, args) -> None:
    body = multipart("big.jpg", big_photo(4000, 3000), {"size": str(args.size), "format": "jpeg"})
    run_clients(port, pid, 1, 1, [multipart("s.jpg", photos(False)[0][1], {})])  # warm-up
    time.sleep(1.0)
    idle = rss_mb(pid)[0]
    lat, statuses, wall, peak = run_clients(port, pid, 4, args.burst, [body])
    right_after = rss_mb(pid)[0]
    time.sleep(3.0)
    later = rss_mb(pid)[0]
    print(
        f"| burst: {args.burst} API colourings of 12 MP, 4 clients ({dict(statuses)}) | "
        f"RSS idle {idle:.0f} MB, peak {peak:.0f} MB, right after {right_after:.0f} MB, "
        f"3 s later {later:.0f} MB | |"
    )


SCENARIOS = {
    "load": scenario_load,
    "idle": scenario_idle,
    "downloads": scenario_downloads,
    "burst": scenario_burst,
}


def start_server(args, instance: str) -> tuple[subprocess.Popen, int]:
    from pix2color.models.io import available_models

    models = args.models or available_models()[:1] or ["runs/default/model"]
    port = free_port()
    env = {
        **os.environ,
        "PIX2COLOR_WEB_COLORIZE_PER_MINUTE": "1000000",  # measure the server, not the limiter
    }
    cmd = [sys.executable, "-m", "pix2color.cli", "serve", "--port", str(port)]
    cmd += ["--instance", instance, "--models", *models]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    server = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    deadline = time.time() + 180
    while True:
        if server.poll() is not None:
            sys.exit(f"the server exited: {server.stderr.read()}")
        try:
            if request(port, "GET", "/healthz", timeout=2)[0] == 200:
                return server, port
        except OSError:
            pass
        if time.time() > deadline:
            sys.exit("the server did not answer /healthz in 180 s")
        time.sleep(0.3)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", help="as for serve --models (default: the first shipped)")
    p.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=list(SCENARIOS))
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--requests", type=int, default=64)
    p.add_argument("--idle", type=int, default=210)
    p.add_argument("--downloads", type=int, default=8)
    p.add_argument("--burst", type=int, default=8)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--threads", type=int, help="serve --threads (default: the server's own)")
    args = p.parse_args()
    import pix2color

    print(
        f"code: {pix2color.__file__.rsplit('/src/', 1)[0]}; {platform.machine()}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; working size {args.size}"
    )
    print()
    print("| scenario | server | /healthz from another client |")
    print("|---|---|---|")
    for name in args.scenarios:
        with tempfile.TemporaryDirectory() as instance:  # a fresh server per scenario
            server, port = start_server(args, instance)
            try:
                SCENARIOS[name](port, server.pid, args)
            finally:
                server.terminate()
                server.wait(timeout=60)


if __name__ == "__main__":
    main()
