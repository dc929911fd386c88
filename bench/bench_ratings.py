"""Rating floods against the web service: how far can one client move a model's MOS?

Starts the app in this process on waitress, on a free loopback port, with two tiny random
models (`alpha`, `beta`: the ratings are what is measured, not the colour) and the default rate
limits. For each scenario a fresh server and database: an honest person (from 127.0.0.2, through
the page, blind) gives `alpha` 4 and 5 stars on two photos (n=2, MOS 4.5); then an attacker
(from 127.0.0.1) floods, as fast as it can:

- `named`: colours `--flood` photos through the API naming `alpha`, then gives each 5 stars;
- `repeat`: colours one photo through the API, then gives it 5 stars `--flood` times;
- `overwrite`: gives 1 star to `alpha` on the honest person's page photos, `--flood` times,
  without their cookie (the job ids leaked, e.g. from a shared link).

Prints a Markdown table: ratings sent, accepted (2xx), refused (by status), and `alpha`'s n and
MOS on the statistics page before and after the flood: blind and named apart where the code
keeps them apart ("all" where it pools them). Bounded: a few hundred small requests per
scenario, loopback only. Run from the code to measure with `PYTHONPATH=<its src>`:

    python bench/bench_ratings.py [--flood 60]
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import re
import tempfile
import threading
import time
import uuid
from collections import Counter

import torch
from PIL import Image

import pix2color
from pix2color.inference.colorizer import Colorizer
from pix2color.models.unet import UNetGenerator
from pix2color.web import create_app
from pix2color.web.server import make_server

ADMIN = "bench-admin-token"
HONEST, ATTACKER = "127.0.0.2", "127.0.0.1"  # two client addresses on loopback


def tiny(seed: int) -> UNetGenerator:
    torch.manual_seed(seed)
    return UNetGenerator(base_channels=8, depth=4, max_channels=16).eval()


def photo(seed: int) -> bytes:
    img = Image.effect_noise((48, 32), 40 + seed % 50).convert("L")
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def multipart(fields: dict[str, str], data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="p.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n".encode()
        + data
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


class Client:
    """One client address with its own cookie (a browser, or a script)."""

    def __init__(self, port: int, address: str) -> None:
        self.port, self.address, self.cookie = port, address, ""

    def request(self, method: str, path: str, body: bytes = b"", headers=None):
        conn = http.client.HTTPConnection(
            "127.0.0.1", self.port, timeout=60, source_address=(self.address, 0)
        )
        headers = dict(headers or {})
        if self.cookie:
            headers["Cookie"] = self.cookie
        conn.request(method, path, body=body or None, headers=headers)
        r = conn.getresponse()
        data = r.read()
        cookie = r.getheader("Set-Cookie")
        if cookie:
            self.cookie = cookie.split(";", 1)[0]
        conn.close()
        return r.status, dict(r.getheaders()), data

    def json(self, method: str, path: str, payload=None, headers=None):
        body = json.dumps(payload).encode() if payload is not None else b""
        headers = {"Content-Type": "application/json", **(headers or {})}
        status, h, data = self.request(method, path, body, headers)
        return status, h, json.loads(data) if data else None


def alpha_stats(client: Client) -> dict[str, tuple[int, float | None]]:
    """alpha's (n, MOS) per kind of rating, as /admin/stats.json gives them."""
    _, _, stats = client.json(
        "GET", "/admin/stats.json", headers={"Authorization": "Bearer " + ADMIN}
    )
    kinds = {"all": stats["models"]} if "models" in stats else stats  # before: pooled
    out = {}
    for kind, rows in kinds.items():
        if not isinstance(rows, list):
            continue
        row = next(r for r in rows if r["model"] == "alpha")
        out[kind] = (row["n"], row["mos"])
    return out


def honest_ratings(app, port: int) -> list[str]:
    """Two page photos, each with alpha's result rated (4, then 5): blind, from 127.0.0.2."""
    person = Client(port, HONEST)
    _, _, html = person.request("GET", "/")
    token = re.search(rb'name="csrf-token" content="([^"]+)"', html).group(1).decode()
    jobs = []
    for i, score in enumerate((4, 5)):
        body, ctype = multipart({"csrf_token": token, "size": "64"}, photo(i))
        status, _, data = person.request(
            "POST", "/jobs", body, {"Content-Type": ctype, "Accept": "application/json"}
        )
        assert status == 201, data
        job_id = json.loads(data)["job"]
        job = app.extensions["pix2color"].store.get_job(job_id)  # in-process: who is alpha
        rid = next(r["id"] for r in job["results"] if r["model"] == "alpha")
        form = f"csrf_token={token}&result={rid}&score={score}".encode()
        status, _, data = person.request(
            "POST",
            f"/jobs/{job_id}/rate",
            form,
            {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
        )
        assert status == 200, data
        jobs.append(job_id)
    return jobs


def colorize(attacker: Client, seed: int) -> tuple[int, str | None, str | None]:
    body, ctype = multipart({"model": "alpha", "size": "64", "format": "jpeg"}, photo(seed))
    status, headers, _ = attacker.request("POST", "/api/v1/colorize", body, {"Content-Type": ctype})
    return status, headers.get("X-Job-Id"), headers.get("X-Rating-Token")


def flood(scenario: str, n: int, attacker: Client, page_jobs: list[str]) -> Counter:
    statuses: Counter = Counter()

    def rate(job: str, token: str | None, score: int, model: str = "alpha") -> None:
        payload = {"job": job, "model": model, "score": score}
        if token:
            payload["token"] = token
        statuses[attacker.json("POST", "/api/v1/ratings", payload)[0]] += 1

    if scenario == "named":
        made = [colorize(attacker, seed) for seed in range(n)]
        for _, job, token in made:
            if job:
                rate(job, token, 5)
        statuses["colorize refused"] = sum(1 for s, _, _ in made if s != 200)
    elif scenario == "repeat":
        _, job, token = colorize(attacker, 0)
        for _ in range(n):
            rate(job, token, 5)
    elif scenario == "overwrite":
        for i in range(n):
            rate(page_jobs[i % len(page_jobs)], None, 1)
    return statuses


def stop(server, thread: threading.Thread) -> None:
    """Close waitress from its own loop thread (closing from here races its select)."""

    def close_all() -> None:
        for dispatcher in list(server._map.values()):
            dispatcher.close()

    server.trigger.pull_trigger(close_all)
    thread.join(10)
    server.task_dispatcher.shutdown()


def run(scenario: str, n: int) -> dict:
    colorizers = {
        name: Colorizer(tiny(i), size=64, name=name) for i, name in enumerate(["alpha", "beta"])
    }
    with tempfile.TemporaryDirectory() as instance:
        app = create_app(
            {"INSTANCE_PATH": instance, "SECRET_KEY": "bench", "ADMIN_TOKEN": ADMIN},
            colorizers=colorizers,
        )
        server = make_server(app, host="127.0.0.1", port=0, threads=8)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        port = server.effective_port
        try:
            page_jobs = honest_ratings(app, port)
            watcher = Client(port, "127.0.0.3")  # the admin reads the statistics
            before = alpha_stats(watcher)
            attacker = Client(port, ATTACKER)
            t = time.perf_counter()
            statuses = flood(scenario, n, attacker, page_jobs)
            seconds = time.perf_counter() - t
            after = alpha_stats(watcher)
        finally:
            stop(server, thread)
            app.extensions["pix2color"].store.close()
    return dict(before=before, after=after, statuses=statuses, seconds=seconds)


def fmt(pair: tuple[int, float | None]) -> str:
    n, mos = pair
    return f"n={n}, {'-' if mos is None else f'{mos:.2f}'}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--flood", type=int, default=60, help="ratings the attacker sends")
    p.add_argument("--scenarios", nargs="+", default=["named", "repeat", "overwrite"])
    args = p.parse_args()
    torch.set_num_threads(1)
    code = pix2color.__file__.rsplit("/src/", 1)[0]
    print(f"code: {code}; pix2color {pix2color.__version__}; flood of {args.flood} ratings")
    print()
    print(
        "| scenario | sent | accepted | refused | alpha before (kind) | alpha after (kind) "
        "| flood time |"
    )
    print("|---|---|---|---|---|---|---|")
    for scenario in args.scenarios:
        r = run(scenario, args.flood)
        s = r["statuses"]
        sent = sum(v for k, v in s.items() if isinstance(k, int))
        ok = sum(v for k, v in s.items() if isinstance(k, int) and 200 <= k < 300)
        refused = (
            ", ".join(
                f"{v}x {k}"
                for k, v in sorted(s.items(), key=str)
                if v and not (isinstance(k, int) and 200 <= k < 300)
            )
            or "0"
        )
        kinds = list(r["after"])
        before = "; ".join(f"{k}: {fmt(r['before'][k])}" for k in kinds)
        after = "; ".join(f"{k}: {fmt(r['after'][k])}" for k in kinds)
        print(
            f"| {scenario} | {sent} | {ok} | {refused} | {before} | {after} "
            f"| {r['seconds']:.1f} s |"
        )


if __name__ == "__main__":
    main()
