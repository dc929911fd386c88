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

from pix2color.web.schema import ADDED_COLUMNS, ddl

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
        for table, column, kind, fill in ADDED_COLUMNS:
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

    def _ddl(self) -> list[str]:
        return ddl("INTEGER PRIMARY KEY AUTOINCREMENT")


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
        return ["SELECT pg_advisory_xact_lock(4242)"] + ddl(
            "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"
        )
