"""The web service's one data layer: uploads, jobs, results and ratings, read and written.

Every method is one transaction (web/database.py: connections, SQLite and PostgreSQL); the
tables and what lives in each are in web/schema.py.

Who may rate: an upload has an `owner`, the digest (owner_digest) of a secret only its sender
holds: the page's session, or the token the API's colorize call returned. A job is rated only
by its owner, so a result has at most one rating, and that rating's `rater` is the owner.
A rating is `blind` when the result was shown under a neutral label with the names hidden
(an upload from the page), named when the caller chose the model (the API); the statistics
keep the two apart, since a named rating can be given by someone with a stake in a model.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pix2color.web.database import Database, PostgresDatabase, SQLiteDatabase, StoreError
from pix2color.web.schema import SCORES

RATING_COLUMNS = (
    "id", "created_at", "updated_at", "job_id", "model", "label", "size", "score", "best",
    "compared", "source", "blind", "rater",
)  # fmt: skip
KINDS = ("blind", "named")  # the two kinds of rating the statistics keep apart


class RatingError(ValueError):
    """A rating that cannot be recorded as asked; the message says why (answered 400)."""


def check_score(score: object) -> int:
    """A rating's score, or RatingError: a whole number in SCORES (never True or "4")."""
    if isinstance(score, bool) or not isinstance(score, int) or score not in SCORES:
        raise RatingError(
            f"score must be a whole number from {SCORES[0]} to {SCORES[-1]} stars; got {score!r}"
        )
    return score


def owner_digest(kind: str, secret: str) -> str:
    """What the store keeps of an owner's secret: `page` sessions and `api` tokens never match."""
    return hashlib.sha256(f"pix2color-owner:{kind}:{secret}".encode()).hexdigest()


class Store(Database):
    """The queries, on either backend (SQLiteStore, PostgresStore); one per server process."""

    # ------------------------------------------------------------------ opening
    @staticmethod
    def open(url: str | None, instance_path: str | Path) -> Store:
        """`postgresql://...` -> PostgreSQL; None, '' or `sqlite:///path` -> SQLite."""
        if url and url.startswith(("postgresql://", "postgres://")):
            store: Store = PostgresStore(url)
        elif url and not url.startswith("sqlite:///"):
            raise StoreError(
                f"database URL {url!r} is not understood; use postgresql://user@host:port/db "
                "or sqlite:///path/to/file.sqlite3 (or none: SQLite in the instance folder)"
            )
        else:
            path = url.removeprefix("sqlite:///") if url else Path(instance_path) / "pix2color.db"
            store = SQLiteStore(Path(path))
        store.create_schema()
        return store

    # ------------------------------------------------------------------ jobs
    def add_upload(self, upload: dict[str, Any]) -> None:
        """Insert one upload row (keys: the `uploads` columns)."""
        cols = list(upload)
        with self.transaction() as cur:
            cur.execute(
                f"INSERT INTO uploads ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                [upload[c] for c in cols],
            )

    def add_job(self, job: dict[str, Any], results: list[dict[str, Any]]) -> None:
        """Insert a job and its results in one transaction."""
        with self.transaction() as cur:
            cur.execute(
                "INSERT INTO jobs (id, upload_id, size, created_at) VALUES (?, ?, ?, ?)",
                [job["id"], job["upload_id"], job["size"], job["created_at"]],
            )
            for r in results:
                cur.execute(
                    "INSERT INTO results (id, job_id, model, label, file, seconds, points)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [r["id"], job["id"], r["model"], r["label"], r.get("file"), r["seconds"],
                     r.get("points")],
                )  # fmt: skip

    def set_points(self, result_id: str, points: str | None) -> None:
        """Keep a result's colour points (points.dumps' JSON text; None: none)."""
        with self.transaction() as cur:
            cur.execute("UPDATE results SET points = ? WHERE id = ?", [points, result_id])

    def get_upload(self, upload_id: str, now: float | None = None) -> dict[str, Any] | None:
        now = time.time() if now is None else now
        with self.transaction() as cur:
            cur.execute("SELECT * FROM uploads WHERE id = ? AND expires_at > ?", [upload_id, now])
            return cur.fetchone()

    def get_job(self, job_id: str, now: float | None = None) -> dict[str, Any] | None:
        """A live job with its upload's fields, its results (by label) and its ratings."""
        now = time.time() if now is None else now
        with self.transaction() as cur:
            cur.execute(
                "SELECT j.id, j.size, j.created_at, j.upload_id, u.filename, u.stored, u.view,"
                " u.width, u.height, u.format, u.source, u.expires_at, u.owner, u.reference"
                " FROM jobs j JOIN uploads u ON u.id = j.upload_id"
                " WHERE j.id = ? AND u.expires_at > ?",
                [job_id, now],
            )
            job = cur.fetchone()
            if job is None:
                return None
            cur.execute("SELECT * FROM results WHERE job_id = ? ORDER BY label", [job_id])
            job["results"] = cur.fetchall()
            cur.execute("SELECT model, score, best FROM ratings WHERE job_id = ?", [job_id])
            job["ratings"] = {r["model"]: r for r in cur.fetchall()}
        return job

    def jobs_of(self, owner: str, now: float | None = None, limit: int = 100) -> list[str]:
        """The live jobs of an owner's uploads, newest first (the page lists its session's)."""
        now = time.time() if now is None else now
        with self.transaction() as cur:
            cur.execute(
                "SELECT j.id FROM jobs j JOIN uploads u ON u.id = j.upload_id"
                " WHERE u.owner = ? AND u.expires_at > ? ORDER BY j.created_at DESC, j.id"
                " LIMIT ?",
                [owner, now, limit],
            )
            return [row["id"] for row in cur.fetchall()]

    def get_result(self, result_id: str, now: float | None = None) -> dict[str, Any] | None:
        """A live result with its job's working size and its upload's name and size."""
        now = time.time() if now is None else now
        with self.transaction() as cur:
            cur.execute(
                "SELECT r.*, j.size, u.filename, u.width, u.height, u.expires_at,"
                " (SELECT COUNT(*) FROM results r2 WHERE r2.job_id = r.job_id) AS siblings"
                " FROM results r JOIN jobs j ON j.id = r.job_id"
                " JOIN uploads u ON u.id = j.upload_id"
                " WHERE r.id = ? AND u.expires_at > ?",
                [result_id, now],
            )
            return cur.fetchone()

    # ------------------------------------------------------------------ ratings
    def rate(
        self,
        job: dict[str, Any],
        model: str,
        *,
        score: int | None = None,
        source: str = "web",
        now: float | None = None,
    ) -> None:
        """Record (or change) a score (SCORES) for one model's result on a job.

        The caller has checked that the rater owns the job; a second rating of the same result
        replaces the first (one rating per result and rater).
        """
        check_score(score)
        result = _result_for(job, model)
        now = time.time() if now is None else now
        with self.transaction() as cur:
            cur.execute(
                "INSERT INTO ratings (job_id, model, label, size, score, best, compared, source,"
                " created_at, updated_at, blind, rater) VALUES (?, ?, ?, ?, ?, NULL, ?, ?, ?, ?,"
                " ?, ?) ON CONFLICT (job_id, model) DO UPDATE SET score = excluded.score,"
                " updated_at = excluded.updated_at",
                [job["id"], model, result["label"], job["size"], score, len(job["results"]),
                 source, now, now, _blind(job), job.get("owner")],
            )  # fmt: skip

    def choose_best(
        self, job: dict[str, Any], winner: str, *, source: str = "web", now: float | None = None
    ) -> None:
        """Record which of a job's results was picked: best=1 for it, 0 for the others."""
        if len(job["results"]) < 2:
            raise RatingError(
                "this job has one result; best needs a comparison of at least two results"
            )
        _result_for(job, winner)
        now = time.time() if now is None else now
        with self.transaction() as cur:
            for r in job["results"]:
                cur.execute(
                    "INSERT INTO ratings (job_id, model, label, size, score, best, compared,"
                    " source, created_at, updated_at, blind, rater) VALUES (?, ?, ?, ?, NULL, ?,"
                    " ?, ?, ?, ?, ?, ?) ON CONFLICT (job_id, model) DO UPDATE SET"
                    " best = excluded.best, updated_at = excluded.updated_at",
                    [job["id"], r["model"], r["label"], job["size"], int(r["model"] == winner),
                     len(job["results"]), source, now, now, _blind(job), job.get("owner")],
                )  # fmt: skip

    def model_stats(self, kind: str | None = None) -> dict[str, dict[str, float]]:
        """Per model: n scores, their sum and sum of squares, comparisons and wins.

        kind: "blind" (names hidden: the page), "named" (the API), or None for both together.
        """
        if kind not in (None, *KINDS):
            raise ValueError(f"kind must be one of {KINDS} or None, got {kind!r}")
        where = "" if kind is None else f" WHERE blind = {int(kind == 'blind')}"
        with self.transaction() as cur:
            cur.execute(
                "SELECT model, COUNT(score) AS n, COALESCE(SUM(score), 0) AS total,"
                " COALESCE(SUM(score * score), 0) AS total_sq, COUNT(best) AS comparisons,"
                f" COALESCE(SUM(best), 0) AS wins FROM ratings{where}"
                " GROUP BY model ORDER BY model"
            )
            rows = cur.fetchall()
        return {r.pop("model"): {k: int(v) for k, v in r.items()} for r in rows}

    def ratings(self, batch: int = 1000) -> Iterator[dict[str, Any]]:
        """Every rating row, oldest first, fetched in batches (for the CSV export)."""
        last = 0
        while True:
            with self.transaction() as cur:
                cur.execute(
                    f"SELECT {', '.join(RATING_COLUMNS)} FROM ratings WHERE id > ?"
                    " ORDER BY id LIMIT ?",
                    [last, batch],
                )
                rows = cur.fetchall()
            yield from rows
            if len(rows) < batch:
                return
            last = rows[-1]["id"]

    # ------------------------------------------------------------------ expiry
    def expire(self, now: float | None = None) -> list[str]:
        """Delete expired uploads (with their jobs and results); return their file names."""
        now = time.time() if now is None else now
        with self.transaction() as cur:
            cur.execute(
                "SELECT u.stored, u.view, r.file FROM uploads u"
                " LEFT JOIN jobs j ON j.upload_id = u.id LEFT JOIN results r ON r.job_id = j.id"
                " WHERE u.expires_at <= ?",
                [now],
            )
            files = {f for row in cur.fetchall() for f in row.values() if f}
            cur.execute(
                "DELETE FROM results WHERE job_id IN (SELECT j.id FROM jobs j"
                " JOIN uploads u ON u.id = j.upload_id WHERE u.expires_at <= ?)",
                [now],
            )
            cur.execute(
                "DELETE FROM jobs WHERE upload_id IN (SELECT id FROM uploads"
                " WHERE expires_at <= ?)",
                [now],
            )
            cur.execute("DELETE FROM uploads WHERE expires_at <= ?", [now])
        return sorted(files)


def _result_for(job: dict[str, Any], model: str) -> dict[str, Any]:
    for r in job["results"]:
        if r["model"] == model:
            return r
    raise RatingError(f"model {model!r} has no result in job {job['id']}")


def _blind(job: dict[str, Any]) -> int:
    """1 when the job's results were shown with hidden names (a page upload), else 0."""
    return int(job.get("source") == "web")


class SQLiteStore(SQLiteDatabase, Store):
    """The store in an SQLite file (the default: the instance folder's pix2color.db)."""


class PostgresStore(PostgresDatabase, Store):
    """The store in a PostgreSQL database, shared by several server processes."""
