"""The data layer on both databases: SQLite in the instance folder and a real PostgreSQL."""

import threading
import time

import pytest

from pix2color.web.database import StoreError
from pix2color.web.store import Store


@pytest.fixture
def store(database_url, tmp_path):
    s = Store.open(database_url, tmp_path)
    yield s
    s.close()


def add_job(store, job_id="j1", models=("alpha", "beta"), expires_in=600.0, now=None):
    now = time.time() if now is None else now
    store.add_upload(
        dict(
            id=f"u-{job_id}",
            filename="a.jpg",
            stored=f"{job_id}.upload",
            view=f"{job_id}-view.jpg",
            width=4,
            height=3,
            format="JPEG",
            source="web",
            created_at=now,
            expires_at=now + expires_in,
        )
    )
    results = [
        dict(id=f"{job_id}-{m}", model=m, label="AB"[i], file=f"{job_id}-{m}.png", seconds=0.1)
        for i, m in enumerate(models)
    ]
    store.add_job(dict(id=job_id, upload_id=f"u-{job_id}", size=256, created_at=now), results)
    return store.get_job(job_id, now=now)


def test_job_round_trip(store):
    job = add_job(store)
    assert (job["filename"], job["width"], job["height"], job["size"]) == ("a.jpg", 4, 3, 256)
    assert [(r["label"], r["model"]) for r in job["results"]] == [("A", "alpha"), ("B", "beta")]
    assert job["ratings"] == {}
    result = store.get_result("j1-beta")
    assert (result["label"], result["filename"], result["siblings"]) == ("B", "a.jpg", 2)
    assert store.get_job("nope") is None and store.get_result("nope") is None


def _figures(stats, *keys):
    keys = keys or ("n", "total", "total_sq", "comparisons", "wins")
    return {m: tuple(s[k] for k in keys) for m, s in stats.items()}


def test_ratings_upsert_and_stats(store):
    job = add_job(store)
    store.rate(job, "alpha", score=2)
    store.rate(job, "alpha", score=4)  # a changed mind replaces, never duplicates
    store.choose_best(job, "beta")  # judged: the names are shown now
    store.choose_best(job, "alpha")  # a change after that is named; the blind choice stays
    job2 = add_job(store, "j2")
    store.rate(job2, "alpha", score=5)
    store.rate(job2, "beta", score=1)  # every result scored: names shown
    assert _figures(store.model_stats("blind")) == {
        "alpha": (2, 9, 41, 1, 0),
        "beta": (1, 1, 1, 1, 1),
    }
    assert _figures(store.model_stats("named")) == {"alpha": (0, 0, 0, 1, 1),
                                                    "beta": (0, 0, 0, 1, 0)}  # fmt: skip
    rows = list(store.ratings(batch=2))  # batches join up
    assert [(r["job_id"], r["model"], r["score"], r["best"], r["blind"]) for r in rows] == [
        ("j1", "alpha", 4, 0, 1),
        ("j1", "beta", None, 1, 1),
        ("j1", "alpha", None, 1, 0),
        ("j1", "beta", None, 0, 0),
        ("j2", "alpha", 5, None, 1),
        ("j2", "beta", 1, None, 1),
    ]
    j1 = store.get_job("j1")
    assert j1["revealed"] and j1["ratings"]["alpha"]["score"] == 4  # the latest of each
    assert j1["ratings"]["alpha"]["best"] == 1 and j1["ratings"]["beta"]["best"] == 0


def test_a_blind_rating_is_final_once_the_names_are_shown(store):
    job = add_job(store)
    store.rate(job, "alpha", score=2, client="c1")
    store.rate(job, "beta", score=4, client="c1")  # both scored: the names are shown
    assert store.get_job("j1")["revealed"]
    store.rate(job, "alpha", score=5, client="c1")  # a change of mind with the names known
    store.rate(job, "alpha", score=1, client="c1")  # and another: one named row
    assert _figures(store.model_stats("blind"), "n", "total") == {"alpha": (1, 2), "beta": (1, 4)}
    assert _figures(store.model_stats("named"), "n", "total") == {"alpha": (1, 1)}
    assert len(list(store.ratings())) == 3  # the blind rating was never overwritten


def test_each_client_weighs_the_same_in_a_models_mos(store):
    for i in range(10):  # one client scores alpha 5 on ten photos
        store.rate(add_job(store, f"s{i}", models=("alpha",)), "alpha", score=5, client="stuffer")
    for i, score in enumerate((2, 3)):  # two others score it once each
        store.rate(add_job(store, f"p{i}", models=("alpha",)), "alpha", score=score,
                   client=f"person{i}")  # fmt: skip
    alpha = store.model_stats("blind")["alpha"]
    assert (alpha["n"], alpha["total"], alpha["raters"]) == (12, 55, 3)
    assert alpha["rater_total"] == 10.0  # 5 + 2 + 3: the stuffer's ten count as one mean


def test_invalid_ratings_are_refused(store):
    job = add_job(store, models=("alpha",))
    with pytest.raises(ValueError, match="from 1 to 5"):
        store.rate(job, "alpha", score=0)
    with pytest.raises(ValueError, match="no result"):
        store.rate(job, "gamma", score=3)
    with pytest.raises(ValueError, match="at least two results"):
        store.choose_best(job, "alpha")
    assert store.model_stats() == {}


def test_expire_deletes_jobs_and_returns_files_but_keeps_ratings(store):
    now = time.time()
    old = add_job(store, "old", now=now - 1000, expires_in=600)
    add_job(store, "new", now=now)
    store.rate(old, "alpha", score=3)
    files = store.expire(now)
    assert files == ["old-alpha.png", "old-beta.png", "old-view.jpg", "old.upload"]
    assert store.get_job("old") is None and store.get_job("new") is not None
    assert store.model_stats()["alpha"]["n"] == 1
    assert store.expire(now) == []


def test_concurrent_writers_lose_nothing(store):
    jobs = [add_job(store, f"j{i}") for i in range(8)]
    errors = []

    def worker(job):
        try:
            for score in (1, 2, 3, 4, 5):
                store.rate(job, "alpha", score=score)
                store.rate(job, "beta", score=6 - score)
        except Exception as e:  # reported below: a thread's exception would vanish otherwise
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(j,)) for j in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    # each job's first pair is blind (and shows the names); the last of the others is named
    blind, named = store.model_stats("blind"), store.model_stats("named")
    assert (blind["alpha"]["n"], blind["alpha"]["total"], blind["beta"]["total"]) == (8, 8, 40)
    assert (named["alpha"]["n"], named["alpha"]["total"], named["beta"]["total"]) == (8, 40, 8)


def test_two_processes_share_one_store(database_url, tmp_path):
    """Two Store objects (as two server processes would have) see each other's commits."""
    one, two = Store.open(database_url, tmp_path), Store.open(database_url, tmp_path)
    try:
        job = add_job(one)
        two.rate(two.get_job(job["id"]), "beta", score=5)
        assert one.model_stats()["beta"]["n"] == 1
    finally:
        one.close()
        two.close()


def test_ping_and_unreachable_database(store, tmp_path):
    store.ping()
    with pytest.raises(StoreError, match="database URL 'mysql://x' is not understood"):
        Store.open("mysql://x", tmp_path)


def test_unreachable_postgres_is_a_clear_error(tmp_path):
    pytest.importorskip("psycopg")
    with pytest.raises(StoreError, match="cannot connect to PostgreSQL database nobody on"):
        Store.open("postgresql://u:secret@127.0.0.1:1/nobody?connect_timeout=2", tmp_path)


def test_a_dropped_postgres_connection_is_an_error_once_then_reconnects(postgres_url, tmp_path):
    import psycopg

    store = Store.open(postgres_url, tmp_path)
    try:
        job = add_job(store)
        with psycopg.connect(postgres_url, autocommit=True) as admin:  # e.g. a server restart
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        with pytest.raises(StoreError, match="PostgreSQL database"):
            store.rate(job, "alpha", score=3)
        store.rate(job, "alpha", score=3)  # a new connection
        assert store.model_stats()["alpha"]["n"] == 1
    finally:
        store.close()
