"""Load benchmark of the web service: N concurrent clients upload real photos to the API.

Starts `pix2color serve` (waitress) on a free loopback port in a subprocess, waits for
/healthz, then for each client count runs until `--requests` requests are done or `--seconds`
pass (bounded both ways; loopback only). Each client posts grey JPEGs of scikit-image's photos
(astronaut 512x512, coffee 600x400, chelsea 451x300, rocket 640x427 and, with --big, a 12 Mpx
upscale) to POST /api/v1/colorize. Reports throughput, p50/p95 latency of successful requests,
errors by status (503 = busy, the designed answer under overload) and the server's resident
memory (peak sampled during the level, and its high-water mark). Prints a Markdown table.

Run: `python bench/bench_web.py [--models default] [--clients 1 4 16] [--requests 48]`
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from pathlib import Path

from PIL import Image
from skimage import data as skdata


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def photos(big: bool) -> list[tuple[str, bytes]]:
    out = []
    for name in ("astronaut", "coffee", "chelsea", "rocket"):
        img = Image.fromarray(getattr(skdata, name)()).convert("L")
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=90)
        out.append((f"{name}.jpg", buf.getvalue()))
    if big:
        img = Image.fromarray(skdata.astronaut()).convert("L").resize((4000, 3000))
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=90)
        out.append(("big.jpg", buf.getvalue()))
    return out


def multipart(filename: str, data: bytes, fields: dict[str, str]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{filename}"\r\n'
        "Content-Type: image/jpeg\r\n\r\n".encode()
        + data
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MB, from /proc."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            key, kb = line.split(":")
            values[key] = int(kb.split()[0]) / 1024
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


def run_level(url, clients, total, seconds, bodies, pid):
    lock = threading.Lock()
    state = {"started": 0}
    latencies: list[float] = []
    statuses: Counter = Counter()
    deadline = time.monotonic() + seconds
    peak = [0.0]
    stop = threading.Event()

    def sampler():
        while not stop.is_set():
            peak[0] = max(peak[0], rss_mb(pid)[0])
            stop.wait(0.1)

    def client(i):
        while time.monotonic() < deadline:
            with lock:
                if state["started"] >= total:
                    return
                n = state["started"]
                state["started"] += 1
            body, ctype = bodies[(n + i) % len(bodies)]
            req = urllib.request.Request(url, data=body, headers={"Content-Type": ctype})
            t = time.perf_counter()
            try:
                with urllib.request.urlopen(req, timeout=120) as r:
                    r.read()
                    status = r.status
            except urllib.error.HTTPError as e:
                e.read()
                status = e.code
            except OSError as e:
                status = type(e).__name__
            dt = time.perf_counter() - t
            with lock:
                statuses[status] += 1
                if status == 200:
                    latencies.append(dt)

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
    return latencies, statuses, wall, peak[0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--models",
        nargs="+",
        help="as for `pix2color serve --models` "
        "(default: every shipped model, else runs/default/model)",
    )
    p.add_argument("--clients", nargs="+", type=int, default=[1, 4, 16])
    p.add_argument("--requests", type=int, default=48, help="requests per client count")
    p.add_argument("--seconds", type=float, default=60.0, help="time limit per client count")
    p.add_argument("--size", type=int, default=256, help="working size sent with each request")
    p.add_argument("--slots", type=int, default=2, help="the server's inference slots")
    p.add_argument(
        "--threads", type=int, help="the server's request threads (default: the server's own)"
    )
    p.add_argument("--busy-timeout", type=float, default=10.0, help="seconds before 503")
    p.add_argument("--big", action="store_true", help="add a 12 Mpx photo to the mix")
    args = p.parse_args()

    from pix2color.models.io import available_models

    models = args.models or available_models() or ["runs/default/model"]
    port = free_port()
    env = {
        **os.environ,
        "PIX2COLOR_WEB_COLORIZE_PER_MINUTE": "1000000",  # measure the server, not the limiter
        "PIX2COLOR_WEB_BUSY_TIMEOUT": str(args.busy_timeout),
    }
    with tempfile.TemporaryDirectory() as instance:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pix2color.cli",
                "serve",
                "--port",
                str(port),
                "--instance",
                instance,
                "--slots",
                str(args.slots),
                *(["--threads", str(args.threads)] if args.threads else []),
                "--models",
                *models,
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.time() + 120
            while True:
                if server.poll() is not None:
                    sys.exit(f"the server exited: {server.stderr.read()}")
                try:
                    urllib.request.urlopen(f"{base}/healthz", timeout=2).read()
                    break
                except OSError:
                    if time.time() > deadline:
                        sys.exit("the server did not answer /healthz in 120 s")
                    time.sleep(0.3)
            idle = rss_mb(server.pid)[0]
            bodies = [
                multipart(name, data, {"size": str(args.size), "format": "jpeg"})
                for name, data in photos(args.big)
            ]
            run_level(f"{base}/api/v1/colorize", 1, 2, 30, bodies, server.pid)  # warm-up
            print(
                f"pix2color serve (waitress, {args.threads or 'default'} threads, "
                f"{args.slots} inference slots, busy timeout {args.busy_timeout:g} s), "
                f"models {', '.join(models)}, "
                f"working size {args.size}; {platform.processor() or platform.machine()}, "
                f"{os.cpu_count()} CPUs; photos: {', '.join(n for n, _ in photos(args.big))} "
                f"(grey JPEG) -> JPEG; idle server RSS {idle:.0f} MB"
            )
            print()
            print(
                "| clients | requests | ok | errors | throughput (req/s) | p50 (ms) | p95 (ms) "
                "| server RSS peak (MB) |"
            )
            print("|---|---|---|---|---|---|---|---|")
            for clients in args.clients:
                lat, statuses, wall, peak = run_level(
                    f"{base}/api/v1/colorize",
                    clients,
                    args.requests,
                    args.seconds,
                    bodies,
                    server.pid,
                )
                done = sum(statuses.values())
                errors = {k: v for k, v in statuses.items() if k != 200}
                err = ", ".join(f"{v}x {k}" for k, v in sorted(errors.items(), key=str)) or "0"
                q = statistics.quantiles(lat, n=20) if len(lat) >= 2 else [float("nan")] * 19
                p50 = statistics.median(lat) * 1000 if lat else float("nan")
                print(
                    f"| {clients} | {done} | {len(lat)} | {err} | {len(lat) / wall:.2f} "
                    f"| {p50:.0f} | {q[18] * 1000:.0f} | {peak:.0f} |"
                )
            hwm = rss_mb(server.pid)[1]
            print()
            print(f"server RSS high-water mark over the whole run: {hwm:.0f} MB")
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
