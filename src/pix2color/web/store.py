"""The web service's one data layer: uploads, jobs, results and ratings, read and written.

Every method is one transaction (web/database.py: connections, SQLite and PostgreSQL); the
tables and what lives in each are in web/schema.py.

Who may rate: an upload has an `owner`, the digest (owner_digest) of a secret only its sender
holds: the page's session, or the token the API's colorize call returned. A job is rated only
by its owner, so a result has at most one blind and one named rating, and its `rater` is the
owner. A rating is `blind` when the result was shown under a neutral label with the names
hidden (an upload from the page) and given before the names were shown; named when the caller
chose the model (the API) or changed it after the names were shown. The statistics keep the
two apart, since a named rating can be given by someone with a stake in a model; they also
count as named a blind rating by a client who knew the names for the same photo from another
job (known_names), and weigh every client the same (model_stats).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pix2color.web.database import Database, PostgresDatabase, SQLiteDatabase, StoreError
from pix2color.web.schema import SCORES

RATING_COLUMNS = (
    "id", "created_at", "updated_at", "job_id", "model", "label", "size", "score", "best",
    "compared", "source", "blind", "rater", "client", "photo", "counted_blind",
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
                " u.width, u.height, u.format, u.source, u.expires_at, u.owner, u.reference,"
                " u.photo"
                " FROM jobs j JOIN uploads u ON u.id = j.upload_id"
                " WHERE j.id = ? AND u.expires_at > ?",
                [job_id, now],
            )
            job = cur.fetchone()
            if job is None:
                return None
            cur.execute("SELECT * FROM results WHERE job_id = ? ORDER BY label", [job_id])
            job["results"] = cur.fetchall()
            cur.execute(
                "SELECT model, score, best, blind FROM ratings WHERE job_id = ? ORDER BY blind"
                " DESC",
                [job_id],
            )
            # the latest judgement per model: a named change after the names were shown
            # comes after the blind rating it changes
            job["ratings"] = {}
            for r in cur.fetchall():
                now_r = job["ratings"].setdefault(r["model"], dict(r))
                for key in ("score", "best"):
                    if r[key] is not None:
                        now_r[key] = r[key]
            job["revealed"] = _revealed(cur, job)
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

    def hand_over(self, old: str, new: str) -> None:
        """Give every upload of the owner `old` to `new` (a page session's new owner secret)."""
        with self.transaction() as cur:
            cur.execute("UPDATE uploads SET owner = ? WHERE owner = ?", [new, old])

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
        client: str | None = None,
        now: float | None = None,
    ) -> None:
        """Record (or change) a score (SCORES) for one model's result on a job.

        The caller has checked that the rater owns the job. Before the names are shown a
        second rating replaces the first; once they are (a page job judged, `revealed`), the
        blind rating is final and a change is a named rating beside it. client: the keyed
        digest of the rater's address (security.client_digest), whose weight is bounded.
        """
        check_score(score)
        result = _result_for(job, model)
        now = time.time() if now is None else now
        with self.transaction() as cur:
            blind = int(_blind(job) and not _revealed(cur, job))
            cur.execute(
                "INSERT INTO ratings (job_id, model, label, size, score, best, compared, source,"
                " created_at, updated_at, blind, rater, client, photo) VALUES (?, ?, ?, ?, ?,"
                " NULL, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (job_id, model, blind) DO UPDATE"
                " SET score = excluded.score, updated_at = excluded.updated_at,"
                " client = excluded.client",
                [job["id"], model, result["label"], job["size"], score, len(job["results"]),
                 source, now, now, blind, job.get("owner"), client, job.get("photo")],
            )  # fmt: skip
            self._note_revealed(cur, job, client, now)

    def choose_best(
        self,
        job: dict[str, Any],
        winner: str,
        *,
        source: str = "web",
        client: str | None = None,
        now: float | None = None,
    ) -> None:
        """Record which of a job's results was picked: best=1 for it, 0 for the others (named
        when the names were shown before, like `rate`)."""
        if len(job["results"]) < 2:
            raise RatingError(
                "this job has one result; best needs a comparison of at least two results"
            )
        _result_for(job, winner)
        now = time.time() if now is None else now
        with self.transaction() as cur:
            blind = int(_blind(job) and not _revealed(cur, job))
            for r in job["results"]:
                cur.execute(
                    "INSERT INTO ratings (job_id, model, label, size, score, best, compared,"
                    " source, created_at, updated_at, blind, rater, client, photo) VALUES (?, ?,"
                    " ?, ?, NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (job_id, model, blind)"
                    " DO UPDATE SET best = excluded.best, updated_at = excluded.updated_at,"
                    " client = excluded.client",
                    [job["id"], r["model"], r["label"], job["size"], int(r["model"] == winner),
                     len(job["results"]), source, now, now, blind, job.get("owner"), client,
                     job.get("photo")],
                )  # fmt: skip
            self._note_revealed(cur, job, client, now)

    def _note_revealed(self, cur: Any, job: dict[str, Any], client: str | None, now: float):
        """A page job whose names are now shown: its client knows this photo's colourings."""
        if _blind(job) and _revealed(cur, job):
            _known(cur, job, client, now)

    def note_named(self, job: dict[str, Any], client: str, now: float | None = None) -> None:
        """An API colouring: `client` asked for a model's colouring of this photo by name."""
        with self.transaction() as cur:
            _known(cur, job, client, time.time() if now is None else now)

    def model_stats(self, kind: str | None = None) -> dict[str, dict[str, float]]:
        """Per model: n scores, their sum and sum of squares, comparisons and wins, and the
        raters behind them: raters (with a score), comparison_raters, and the sum and sum of
        squares of each rater's mean score (rater_total, rater_total_sq), for a MOS in which
        every rater weighs the same.

        kind: "blind" (names hidden: the page), "named" (the API, page ratings changed after
        the names were shown, blind ones of a photo whose names the rater knew from another
        job), or None for both together. A rater is the client (address digest); a rating of
        before version 2 has none and stands for its job's owner, or for itself.
        """
        if kind not in (None, *KINDS):
            raise ValueError(f"kind must be one of {KINDS} or None, got {kind!r}")
        where = "" if kind is None else f" WHERE counted_blind = {int(kind == 'blind')}"
        with self.transaction() as cur:
            cur.execute(
                "SELECT model, who, COUNT(score) AS n, COALESCE(SUM(score), 0) AS total,"
                " COALESCE(SUM(score * score), 0) AS total_sq, COUNT(best) AS comparisons,"
                f" COALESCE(SUM(best), 0) AS wins FROM ({_COUNTED}) counted{where}"
                " GROUP BY model, who ORDER BY model"
            )
            rows = cur.fetchall()
        stats: dict[str, dict[str, float]] = {}
        for r in rows:
            m = stats.setdefault(
                r["model"],
                dict(n=0, total=0, total_sq=0, comparisons=0, wins=0, raters=0,
                     comparison_raters=0, rater_total=0.0, rater_total_sq=0.0),
            )  # fmt: skip
            n, total = int(r["n"]), int(r["total"])
            for key in ("n", "total", "total_sq", "comparisons", "wins"):
                m[key] += int(r[key])
            if n:
                m["raters"] += 1
                m["rater_total"] += total / n
                m["rater_total_sq"] += (total / n) ** 2
            m["comparison_raters"] += int(r["comparisons"]) > 0
        return stats

    def ratings(self, batch: int = 1000) -> Iterator[dict[str, Any]]:
        """Every rating row, oldest first, fetched in batches (for the CSV export), with
        counted_blind: whether the statistics count it as blind."""
        last = 0
        cols = ", ".join(c for c in RATING_COLUMNS)
        while True:
            with self.transaction() as cur:
                cur.execute(
                    f"SELECT {cols} FROM ({_COUNTED}) counted WHERE id > ? ORDER BY id LIMIT ?",
                    [last, batch],
                )
                rows = cur.fetchall()
            yield from rows
            if len(rows) < batch:
                return
            last = rows[-1]["id"]

    # ------------------------------------------------------------------ admin sessions
    def add_admin_session(self, sid: str, token: str, ttl: float, now: float | None = None):
        """Keep a logged-in admin browser: `sid` the digest of its cookie's id, `token` the
        keyed digest of the admin token it logged in with; it ends after ttl seconds."""
        now = time.time() if now is None else now
        with self.transaction() as cur:
            cur.execute(
                "INSERT INTO admin_sessions (id, token, created_at, expires_at)"
                " VALUES (?, ?, ?, ?)",
                [sid, token, now, now + ttl],
            )

    def admin_session(self, sid: str, token: str, now: float | None = None) -> bool:
        """Whether that admin session is live, and logged in with the admin token of now."""
        now = time.time() if now is None else now
        with self.transaction() as cur:
            cur.execute(
                "SELECT token FROM admin_sessions WHERE id = ? AND expires_at > ?", [sid, now]
            )
            row = cur.fetchone()
        return row is not None and hmac.compare_digest(row["token"], token)

    def end_admin_session(self, sid: str) -> None:
        with self.transaction() as cur:
            cur.execute("DELETE FROM admin_sessions WHERE id = ?", [sid])

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
            cur.execute("DELETE FROM admin_sessions WHERE expires_at <= ?", [now])
        return sorted(files)


def _result_for(job: dict[str, Any], model: str) -> dict[str, Any]:
    for r in job["results"]:
        if r["model"] == model:
            return r
    raise RatingError(f"model {model!r} has no result in job {job['id']}")


def _blind(job: dict[str, Any]) -> int:
    """1 when the job's results were shown with hidden names (a page upload), else 0."""
    return int(job.get("source") == "web")


def _revealed(cur: Any, job: dict[str, Any]) -> bool:
    """Whether a job's names are shown: one result picked as best, or every result scored
    (blind ratings; the page's card says the same, from get_job's `revealed`)."""
    cur.execute(
        "SELECT COUNT(score) AS scored, COALESCE(MAX(best), 0) AS chose FROM ratings"
        " WHERE job_id = ? AND blind = 1",
        [job["id"]],
    )
    row = cur.fetchone() or {}
    return bool(row.get("chose")) or int(row.get("scored") or 0) >= len(job["results"]) > 0


def _known(cur: Any, job: dict[str, Any], client: str | None, now: float) -> None:
    if job.get("photo") and client:
        cur.execute(
            "INSERT INTO known_names (photo, client, job_id, created_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (photo, client, job_id) DO NOTHING",
            [job["photo"], client, job["id"], now],
        )


# every rating with `who` (its rater for the statistics) and `counted_blind`: given blind, and
# its client did not know this photo's names from another job (an API colouring, a page job
# judged before)
_COUNTED = (
    "SELECT r.*, COALESCE(r.client, r.rater, 'rating-' || CAST(r.id AS TEXT)) AS who,"
    " CASE WHEN r.blind = 1 AND NOT EXISTS (SELECT 1 FROM known_names k WHERE k.photo ="
    " r.photo AND k.client = r.client AND k.job_id <> r.job_id) THEN 1 ELSE 0 END"
    " AS counted_blind FROM ratings r"
)


class SQLiteStore(SQLiteDatabase, Store):
    """The store in an SQLite file (the default: the instance folder's pix2color.db)."""


class PostgresStore(PostgresDatabase, Store):
    """The store in a PostgreSQL database, shared by several server processes."""
