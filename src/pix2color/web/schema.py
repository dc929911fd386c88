"""The store's tables, as SQL that SQLite and PostgreSQL both run, and the columns added since.

What lives where:
- `uploads`: one photo a person sent (its file names in the instance folder, never the path
  they came from), with the time its files expire, and the palette of the reference photo it
  was coloured like (reference.Palette's JSON: the reference's file name and colour statistics,
  no pixels; NULL: none).
- `jobs`: one colouring of an upload at one working size; a re-run is a new job.
- `results`: one model's output for a job, under a neutral label (A, B, C) in shuffled order,
  with the colour points it was last coloured with (JSON text, web/points.py; NULL: none).
- `ratings`: a person's judgement of one model on one job: a 1-5 score (SCORES) and/or whether
  it was picked as the best of the compared results, `blind` (1: given with the names hidden),
  the rater (the job's owner digest), the client (a keyed digest of its address) and the
  photo's content digest. Keyed by (job, model, blind): changing one's mind before the names are
  shown updates the blind row; a change after that is a second, named row, and the blind one
  stays as it was. Ratings keep the model name and never reference the files, so they outlive
  the photos, which expire.
- `known_names`: (photo, client, job) where a client saw which model made which colouring of a
  photo: an API colouring (the caller named the model) or a page job whose names were shown.
  A blind rating of the same photo by the same client in another job is not counted as blind.
  Never expired, like the ratings it qualifies; it holds digests only.
- `admin_sessions`: one browser logged in with the admin token: the sha256 of the random id its
  cookie holds (never the id itself, nor the token), a keyed digest of the admin token it
  logged in with (a changed token ends it) and when it ends. Logging out deletes the row.

Older databases are brought up to date when the store opens (database.Database._migrate, with
ADDED_COLUMNS): missing columns are added, every rating is kept, and a rating from before is
blind when it came from the page (`source = 'web'`), named otherwise. Version 2 of `ratings`
(the columns client and photo, the key (job, model, blind)) is a new table: a ratings table
without `client` is copied into it row by row, ids kept, in one transaction.
"""

from __future__ import annotations

SCORES = range(1, 6)  # a rating's stars, the one range the page, the API and the table use

_RATINGS = """
CREATE TABLE IF NOT EXISTS {name} (
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
    blind INTEGER NOT NULL CHECK (blind IN (0, 1)),
    rater TEXT,
    client TEXT,
    photo TEXT,
    UNIQUE (job_id, model, blind)
);
"""

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
    reference TEXT,
    photo TEXT
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
{ratings}
CREATE INDEX IF NOT EXISTS ratings_model ON ratings (model);
CREATE TABLE IF NOT EXISTS known_names (
    photo TEXT NOT NULL,
    client TEXT NOT NULL,
    job_id TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (photo, client, job_id)
);
CREATE TABLE IF NOT EXISTS admin_sessions (
    id TEXT PRIMARY KEY,
    token TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS admin_sessions_expires ON admin_sessions (expires_at);
"""

# columns added since the first schema: (table, column, type, how existing rows are filled)
ADDED_COLUMNS = (
    ("uploads", "owner", "TEXT", None),  # older uploads have no owner: nobody can rate them
    ("ratings", "blind", "INTEGER", "CASE WHEN source = 'web' THEN 1 ELSE 0 END"),
    ("ratings", "rater", "TEXT", None),  # unknown for ratings from before
    ("results", "points", "TEXT", None),  # colour points: none before
    ("uploads", "reference", "TEXT", None),  # a reference photo's palette: none before
    ("uploads", "photo", "TEXT", None),  # the photo's content digest: unknown before
)


# the ratings columns of the schema before version 2, copied as they are into its table
RATINGS_V1_COLUMNS = (
    "id", "job_id", "model", "label", "size", "score", "best", "compared", "source",
    "created_at", "updated_at", "blind", "rater",
)  # fmt: skip


def ratings_table(id_column: str, name: str = "ratings") -> str:
    """The CREATE statement of the ratings table (under another name for a migration)."""
    return _RATINGS.format(
        name=name, id_column=id_column, lowest=SCORES[0], highest=SCORES[-1]
    ).strip()


def ddl(id_column: str) -> list[str]:
    """The CREATE statements, one a string, with the backend's auto-numbered id column."""
    sql = _TABLES.format(ratings=ratings_table(id_column) + ";")
    return [s.strip() for s in sql.split(";") if s.strip()]
