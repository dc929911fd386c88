"""The web service's one data layer: uploads, jobs, results and ratings in a real database.

SQLite in the instance folder by default (WAL, synchronous=FULL, one connection per thread);
PostgreSQL when a URL is configured, so that several server processes share one store. Every
write is one transaction that is committed before the caller answers, so a rating that got a
success answer survives a crash or a restart.

What lives where:
- `uploads`: one photo a person sent (its file names in the instance folder, never the path
  they came from), with the time its files expire, and the palette of the reference photo it
  was coloured like (reference.Palette's JSON: the reference's file name and colour statistics,
  no pixels; NULL: none).
- `jobs`: one colouring of an upload at one working size; a re-run is a new job.
- `results`: one model's output for a job, under a neutral label (A, B, C) in shuffled order,
  with the colour points it was last coloured with (JSON text, web/points.py; NULL: none).
- `ratings`: a person's judgement of one model on one job: a 1-5 score (SCORES) and/or whether
  it was picked as the best of the compared results. Keyed by (job, model), so changing one's mind
  updates the row. Ratings keep the model name and never reference the files, so they outlive
  the photos, which expire.

Who may rate: an upload has an `owner`, the digest (owner_digest) of a secret only its sender
holds: the page's session, or the token the API's colorize call returned. A job is rated only
by its owner, so a result has at most one rating, and that rating's `rater` is the owner.
A rating is `blind` when the result was shown under a neutral label with the names hidden
(an upload from the page), named when the caller chose the model (the API); the statistics
keep the two apart, since a named rating can be given by someone with a stake in a model.

Older databases are brought up to date when the store opens (`_migrate`): missing columns are
added, every rating is kept, and a rating from before is blind when it came from the page
(`source = 'web'`), named otherwise.

SQL is written once with `?` placeholders; the PostgreSQL backend turns them into `%s`.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_TABLES = """
CREATE TABLE IF NOT EXISTS uploads (
    id TEXT PRIMARY KEY,
    filename TEXT NOT NULL,
    stored TEXT,
    view TEXT,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    format TEXT,
    source TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL,
    owner TEXT,
    reference TEXT
);
CREATE INDEX IF NOT EXISTS uploads_expires ON uploads (expires_at);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    upload_id TEXT NOT NULL REFERENCES uploads (id) ON DELETE CASCADE,
    size INTEGER NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_upload ON jobs (upload_id);
CREATE TABLE IF NOT EXISTS results (
    id TEXT PRIMARY KEY,
    job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    model TEXT NOT NULL,
    label TEXT NOT NULL,
    file TEXT,
    seconds DOUBLE PRECISION NOT NULL,
    points TEXT
);
CREATE INDEX IF NOT EXISTS results_job ON results (job_id);
CREATE TABLE IF NOT EXISTS ratings (
    id {id_column},
    job_id TEXT NOT NULL,
    model TEXT NOT NULL,
    label TEXT NOT NULL,
    size INTEGER NOT NULL,
    score INTEGER CHECK (score BETWEEN {lowest} AND {highest}),
    best INTEGER CHECK (best IN (0, 1)),
    compared INTEGER NOT NULL,
    source TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    blind INTEGER CHECK (blind IN (0, 1)),
    rater TEXT,
    UNIQUE (job_id, model)
);
CREATE INDEX IF NOT EXISTS ratings_model ON ratings (model);
"""

RATING_COLUMNS = (
    "id", "created_at", "updated_at", "job_id", "model", "label", "size", "score", "best",
    "compared", "source", "blind", "rater",
)  # fmt: skip

# columns added since the first schema: (table, column, type, how existing rows are filled)
_ADDED_COLUMNS = (
    ("uploads", "owner", "TEXT", None),  # older uploads have no owner: nobody can rate them
    ("ratings", "blind", "INTEGER", "CASE WHEN source = 'web' THEN 1 ELSE 0 END"),
    ("ratings", "rater", "TEXT", None),  # unknown for ratings from before
    ("results", "points", "TEXT", None),  # colour points: none before
    ("uploads", "reference", "TEXT", None),  # a reference photo's palette: none before
)
KINDS = ("blind", "named")  # the two kinds of rating the statistics keep apart


SCORES = range(1, 6)  # a rating's stars, the one range the page, the API and the table use


class StoreError(RuntimeError):
    """The database cannot be reached or used; the message says which one and why."""


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


def _ddl(id_column: str) -> list[str]:
    sql = _TABLES.format(id_column=id_column, lowest=SCORES[0], highest=SCORES[-1])
    return [s.strip() for s in sql.split(";") if s.strip()]


class Store:
    """Shared by every thread of a server process; each thread gets its own connection."""

    kind = "?"

    def __init__(self) -> None:
        self._local = threading.local()
        self._all: list[Any] = []  # every connection opened, so close() can close them
        self._lock = threading.Lock()

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

    def describe(self) -> str:
        raise NotImplementedError

    def _connect(self) -> Any:
        raise NotImplementedError

    def _ddl(self) -> list[str]:
        raise NotImplementedError

    def _sql(self, sql: str) -> str:
        return sql

    def _is_broken(self, conn: Any) -> bool:
        return False

    def _driver_errors(self) -> tuple[type[BaseException], ...]:
        return ()

    def _connection(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None or self._is_broken(conn):
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def transaction(self) -> Iterator[_Cursor]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        conn = self._connection()
        try:
            cur = _Cursor(conn.cursor(), self._sql)
            yield cur
            conn.commit()
        except BaseException as e:
            try:
                conn.rollback()
            except Exception:  # a connection that died mid-way cannot roll back: drop it
                self._local.conn = None
            if isinstance(e, self._driver_errors()):
                raise StoreError(f"{self.describe()}: {e}") from e
            raise

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            try:
                conn.close()
            except Exception as e:  # closing is best effort at shutdown, but say so
                log.debug("closing a database connection failed: %s", e)
        self._local = threading.local()

    def create_schema(self) -> None:
        """Create missing tables and bring an older database's tables up to date, at once."""
        with self.transaction() as cur:
            for statement in self._ddl():
                cur.execute(statement)
            self._migrate(cur)
            # after _migrate: an older uploads table gets its owner column there
            cur.execute("CREATE INDEX IF NOT EXISTS uploads_owner ON uploads (owner)")

    def _migrate(self, cur: _Cursor) -> None:
        """Add the columns an older schema lacks, filling them for the rows already there."""
        for table, column, kind, fill in _ADDED_COLUMNS:
            cur.execute(f"SELECT * FROM {table} WHERE 1 = 0")
            if column in cur.column_names():
                continue
            cur.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
            if fill:
                cur.execute(f"UPDATE {table} SET {column} = {fill}")
            log.info("database updated: %s.%s added", table, column)

    def ping(self) -> None:
        """Raise StoreError if the database cannot answer a query."""
        try:
            with self.transaction() as cur:
                cur.execute("SELECT 1")
                cur.fetchone()
        except Exception as e:
            raise StoreError(f"{self.describe()} does not answer: {e}") from e

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


class _Cursor:
    """A DB-API cursor that speaks `?` placeholders and returns rows as dicts."""

    def __init__(self, cur: Any, translate) -> None:
        self._cur, self._translate = cur, translate

    def execute(self, sql: str, params: list | tuple = ()) -> None:
        self._cur.execute(self._translate(sql), params)

    def _names(self) -> list[str]:
        return [d[0] for d in self._cur.description]

    def column_names(self) -> list[str]:
        """The columns of the last query's result (for a SELECT with no rows too)."""
        return self._names()

    def fetchone(self) -> dict[str, Any] | None:
        row = self._cur.fetchone()
        return None if row is None else dict(zip(self._names(), row, strict=True))

    def fetchall(self) -> list[dict[str, Any]]:
        names = self._names()
        return [dict(zip(names, row, strict=True)) for row in self._cur.fetchall()]


class SQLiteStore(Store):
    kind = "sqlite"

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def describe(self) -> str:
        return f"SQLite database {self.path}"

    def _connect(self) -> sqlite3.Connection:
        try:
            # check_same_thread=False only so close() can run from another thread at shutdown;
            # each connection is otherwise used by the thread that opened it
            conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            conn.execute("PRAGMA journal_mode = WAL")  # readers never block the writer
            conn.execute("PRAGMA synchronous = FULL")  # a commit is on disk before we answer
            conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as e:
            raise StoreError(f"cannot open {self.describe()}: {e}") from e
        return conn

    def _driver_errors(self) -> tuple[type[BaseException], ...]:
        return (sqlite3.Error,)

    def _ddl(self) -> list[str]:
        return _ddl("INTEGER PRIMARY KEY AUTOINCREMENT")


class PostgresStore(Store):
    kind = "postgresql"

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url

    def describe(self) -> str:
        from psycopg.conninfo import conninfo_to_dict

        info = conninfo_to_dict(self.url)  # never print the password
        where = info.get("host") or "localhost"
        return f"PostgreSQL database {info.get('dbname', '?')} on {where}:{info.get('port', 5432)}"

    def _connect(self) -> Any:
        import psycopg

        try:
            return psycopg.connect(self.url, connect_timeout=10)
        except psycopg.Error as e:
            raise StoreError(f"cannot connect to {self.describe()}: {e}") from e

    def _is_broken(self, conn: Any) -> bool:
        return conn.closed or conn.broken

    def _driver_errors(self) -> tuple[type[BaseException], ...]:
        import psycopg

        return (psycopg.Error,)

    def _sql(self, sql: str) -> str:
        assert "%" not in sql, "write SQL with ? placeholders only"
        return sql.replace("?", "%s")

    def _ddl(self) -> list[str]:
        # several server processes may start at once: one creates the tables, the others wait
        return ["SELECT pg_advisory_xact_lock(4242)"] + _ddl(
            "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"
        )
