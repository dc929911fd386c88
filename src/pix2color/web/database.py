"""The store's connections: one per thread, transactions, the schema, and the two backends.

SQLite in the instance folder by default (WAL, synchronous=FULL, one connection per thread);
PostgreSQL when a URL is configured, so that several server processes share one store. Every
write is one transaction that is committed before the caller answers, so a rating that got a
success answer survives a crash or a restart.

SQL is written once with `?` placeholders; the PostgreSQL backend turns them into `%s`. The
queries themselves are the store's (web/store.py); the tables are in web/schema.py.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pix2color.web.schema import ADDED_COLUMNS, RATINGS_V1_COLUMNS, ddl, ratings_table

log = logging.getLogger(__name__)


class StoreError(RuntimeError):
    """The database cannot be reached or used; the message says which one and why."""


class Database:
    """Shared by every thread of a server process; each thread gets its own connection."""

    kind = "?"

    def __init__(self) -> None:
        self._local = threading.local()
        self._all: list[Any] = []  # every connection opened, so close() can close them
        self._lock = threading.Lock()

    def describe(self) -> str:
        raise NotImplementedError

    def _connect(self) -> Any:
        raise NotImplementedError

    def _ddl(self) -> list[str]:
        raise NotImplementedError

    id_column = "?"  # the backend's auto-numbered id column
    _keep_ids = ""  # what an INSERT needs to write the id column's values itself

    def _sql(self, sql: str) -> str:
        return sql

    def _ids_copied(self, cur: _Cursor, table: str) -> None:
        """After rows were copied with their ids: new rows are numbered after them."""

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
        for table, column, kind, fill in ADDED_COLUMNS:
            cur.execute(f"SELECT * FROM {table} WHERE 1 = 0")
            if column in cur.column_names():
                continue
            cur.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
            if fill:
                cur.execute(f"UPDATE {table} SET {column} = {fill}")
            log.info("database updated: %s.%s added", table, column)
        cur.execute("SELECT * FROM ratings WHERE 1 = 0")
        if "client" not in cur.column_names():
            self._ratings_v2(cur)

    def _ratings_v2(self, cur: _Cursor) -> None:
        """Copy a ratings table of before version 2 into one keyed by (job, model, blind), with
        the columns client and photo: every row, ids kept, or nothing (one transaction)."""
        cols = ", ".join(RATINGS_V1_COLUMNS)
        select = ", ".join(
            "COALESCE(blind, CASE WHEN source = 'web' THEN 1 ELSE 0 END)" if c == "blind" else c
            for c in RATINGS_V1_COLUMNS
        )
        cur.execute("DROP TABLE IF EXISTS ratings_v2")  # left by a start that did not finish
        cur.execute(ratings_table(self.id_column, "ratings_v2"))
        cur.execute(
            f"INSERT INTO ratings_v2 ({cols}){self._keep_ids} SELECT {select} FROM ratings"
            " ORDER BY id"
        )
        cur.execute("SELECT (SELECT COUNT(*) FROM ratings) AS old, (SELECT COUNT(*) FROM"
                    " ratings_v2) AS new")  # fmt: skip
        counts = cur.fetchone() or {}
        if counts.get("old") != counts.get("new"):  # never drop a rating: roll it all back
            raise StoreError(f"{self.describe()}: copying the ratings lost rows ({counts})")
        cur.execute("DROP TABLE ratings")
        cur.execute("ALTER TABLE ratings_v2 RENAME TO ratings")
        cur.execute("CREATE INDEX IF NOT EXISTS ratings_model ON ratings (model)")
        self._ids_copied(cur, "ratings")
        log.info("database updated: ratings version 2 (%s ratings kept)", counts.get("new"))

    def ping(self) -> None:
        """Raise StoreError if the database cannot answer a query."""
        try:
            with self.transaction() as cur:
                cur.execute("SELECT 1")
                cur.fetchone()
        except Exception as e:
            raise StoreError(f"{self.describe()} does not answer: {e}") from e


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


class SQLiteDatabase(Database):
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

    id_column = "INTEGER PRIMARY KEY AUTOINCREMENT"  # an id written by hand moves it on

    def _ddl(self) -> list[str]:
        return ddl(self.id_column)


class PostgresDatabase(Database):
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
        return ["SELECT pg_advisory_xact_lock(4242)"] + ddl(self.id_column)

    id_column = "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"
    _keep_ids = " OVERRIDING SYSTEM VALUE"

    def _ids_copied(self, cur: _Cursor, table: str) -> None:
        cur.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
            f" (SELECT COALESCE(MAX(id), 0) + 1 FROM {table}), false)"
        )
