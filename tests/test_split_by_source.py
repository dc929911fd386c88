"""`data prepare --split-by source`: whole sources held out, folds, the in-source test split."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pix2color.cli import main
from pix2color.data.dataset import split_files
from pix2color.data.prepare import prepare
from pix2color.data.split import MAX_SOURCE_SHARE, plan_source_split
from pix2color.data.stats import Look, hamming, same_scene
from pix2color.errors import UsageError

# photos per source: two big packages that must train, and small ones to hold out
SOURCES = {"big-game": 40, "big-edu": 30, "album": 6, "docs": 5, "wallpapers": 4,
           "tests": 3, "demo": 2, "one": 1, "two": 1}  # fmt: skip


def smooth_photo(rng: np.random.Generator, width: int = 96, height: int = 72) -> np.ndarray:
    """A colourful, smooth random picture: its own scene, unlike any other such picture."""
    small = rng.integers(0, 256, (6, 8, 3)).astype(np.uint8)
    return np.asarray(Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC))


def shifted_pair(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two shots of one scene that are not one photo (same_scene, correlation below 0.97)."""
    while True:
        wide = smooth_photo(rng, 96 + 3, 72)
        a, b = wide[:, :96], wide[:, 3:]
        correlation = same_scene(Look.of(a), Look.of(b))
        if correlation is not None and correlation < 0.96:
            return a, b


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    """SOURCES as folders of PNGs, plus one scene shot twice, in 'docs' and in 'big-edu'."""
    root = tmp_path_factory.mktemp("raw")
    rng = np.random.default_rng(7)
    for source, n in SOURCES.items():
        for i in range(n):
            path = root / source / f"{source}_{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(smooth_photo(rng)).save(path)
    a, b = shifted_pair(rng)
    Image.fromarray(a).save(root / "docs" / "shared_scene.png")
    (root / "linked").mkdir()
    Image.fromarray(b).save(root / "linked" / "same_scene_other_source.png")
    return root


def read_manifest(out: Path) -> list[dict[str, str]]:
    with open(out / "manifest.csv", newline="") as f:
        return list(csv.DictReader(f))


def prepared(raw: Path, out: Path, **kwargs) -> list[dict[str, str]]:
    prepare(raw, out, min_side=32, split_by="source", val_fraction=0.2, test_fraction=0.2,
            **kwargs)  # fmt: skip
    return read_manifest(out)


def group(split: str) -> str:
    """The training sources hold both train and test_in."""
    return "train" if split == "test_in" else split


@pytest.fixture(scope="module")
def fold0(raw, tmp_path_factory) -> tuple[Path, list[dict[str, str]]]:
    out = tmp_path_factory.mktemp("photos")
    return out, prepared(raw, out)


def test_no_source_and_no_scene_in_two_splits(fold0):
    out, rows = fold0
    splits_of: dict[str, set[str]] = {}
    for r in rows:
        splits_of.setdefault(r["source"], set()).add(group(r["split"]))
    assert all(len(s) == 1 for s in splits_of.values()), splits_of
    held_out = {s for s, v in splits_of.items() if v & {"val", "test"}}
    assert held_out and {"big-game", "big-edu"}.isdisjoint(held_out)  # big packages train
    assert {r["split"] for r in rows} == {"train", "val", "test", "test_in"}
    # the scene shot in two sources: both sources in one split
    (a,) = [r for r in rows if r["original"] == "docs/shared_scene.png"]
    (b,) = [r for r in rows if r["original"].startswith("linked/")]
    assert a["split"] == b["split"] or {group(a["split"]), group(b["split"])} == {"train"}
    looks = {r["path"]: Look.of(np.asarray(Image.open(out / r["path"]))) for r in rows}
    for r in rows:
        for s in rows:
            if r["split"] != s["split"] and hamming(int(r["dhash"], 16), int(s["dhash"], 16)) < 11:
                assert same_scene(looks[r["path"]], looks[s["path"]]) is None, (r, s)


def test_report_names_the_sources_of_each_split(fold0):
    out, rows = fold0
    report = json.loads((out / "prepare_report.json").read_text())
    plan = report["sources"]
    assert plan["fold"] == 0 and plan["folds"] >= 2 and plan["seed"] == 0
    for split in ("val", "test"):
        counted = {}
        for r in rows:
            if r["split"] == split:
                counted[r["source"]] = counted.get(r["source"], 0) + 1
        assert plan[split] == counted
    assert set(plan["too_big_to_hold_out"]) == {"big-game", "big-edu"}
    assert plan["linked_by_a_scene"] == [["docs", "linked"]]  # the scene shot in both
    assert report["kept"]["test_in"] > 0 and report["settings"]["split_by"] == "source"
    # every split a loader asks for is there
    assert split_files(out, "test_in") and split_files(out, "val") and split_files(out, "train")


def test_the_split_is_deterministic(raw, fold0, tmp_path):
    out, rows = fold0
    assert prepared(raw, tmp_path / "again") == rows


def test_folds_rotate_and_cover_the_held_out_sources(raw, tmp_path):
    plans = []
    for k in range(3):
        prepare(raw, tmp_path / str(k), min_side=32, split_by="source", val_fraction=0.2,
                test_fraction=0.2, fold=k, folds=3)  # fmt: skip
        plans.append(json.loads((tmp_path / str(k) / "prepare_report.json").read_text())["sources"])
    tests = [set(p["test"]) for p in plans]
    assert all(tests) and all(not (tests[i] & tests[j]) for i in range(3) for j in range(i))
    pool = set(SOURCES) | {"linked"}
    assert set().union(*tests) | set(plans[0]["too_big_to_hold_out"]) == pool
    assert [sorted(t) for t in tests] == plans[0]["fold_tests"]
    for p in plans:
        assert not set(p["val"]) & set(p["test"])
    assert len({tuple(sorted(p["val"])) for p in plans}) > 1  # validation rotates too


def test_linked_sources_move_together():
    photos = [("a", "s1"), ("b", "s1"), ("c", "s2"), ("d", "s3"), ("e", "s4"), ("f", "s5")]
    photos += [("big", f"big{i}") for i in range(40)]
    for k in range(2):
        plan = plan_source_split(photos, val_fraction=0.05, test_fraction=0.1, fold=k, folds=2)
        assert plan.split_of_source["a"] == plan.split_of_source["b"]
        assert plan.split_of_source["big"] == "train"
    assert plan.linked == [["a", "b"]]


def test_seed_changes_the_choice_not_the_sizes():
    photos = [(f"s{i}", f"k{i}_{j}") for i in range(12) for j in range(3)]
    photos += [("big", f"big{i}") for i in range(100)]
    plans = [plan_source_split(photos, val_fraction=0.1, test_fraction=0.1, seed=seed)
             for seed in range(4)]  # fmt: skip
    assert len({tuple(p.sources_in("test")) for p in plans}) > 1
    assert all(len(p.sources_in("test")) == len(plans[0].sources_in("test")) for p in plans)


def test_too_few_sources_is_a_usage_error_naming_them(tmp_path, capsys):
    photos = [("big", f"k{i}") for i in range(50)] + [("small", "x")]
    with pytest.raises(UsageError, match="at least 2 sources") as err:
        plan_source_split(photos, val_fraction=0.1, test_fraction=0.1)
    assert "there are 2 source(s) (big 50, small 1), 1 of them small enough" in str(err.value)
    assert f"{MAX_SOURCE_SHARE:.0%}" in str(err.value)
    with pytest.raises(UsageError, match="--fold 5: give 0 to 1"):
        plan_source_split([(f"s{i}", f"k{i}") for i in range(6)], val_fraction=0.1,
                          test_fraction=0.5, fold=5, folds=2)  # fmt: skip
    with pytest.raises(UsageError, match="--folds 9: give 2 to 6"):
        plan_source_split([(f"s{i}", f"k{i}") for i in range(6)], val_fraction=0.1,
                          test_fraction=0.5, folds=9)  # fmt: skip


def test_command_prints_the_sources_and_refuses_misplaced_options(raw, tmp_path, capsys):
    args = ["data", "prepare", str(raw), str(tmp_path / "o"), "--min-side", "32"]
    assert main([*args, "--split-by", "source", "--val", "0.2", "--test", "0.2"]) == 0
    out = capsys.readouterr().out
    assert "split by source: fold 0 of" in out and "test sources (" in out
    assert "too big to hold out (always in training): big-edu, big-game" in out
    assert "{train,val,test,test_in}" in out
    assert main([*args, "--fold", "1"]) == 2  # a fold without --split-by source
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--split-by source" in err[0]
    one = tmp_path / "one_source"
    (one / "only").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(smooth_photo(rng)).save(one / "only" / f"{i}.png")
    assert main(["data", "prepare", str(one), str(tmp_path / "o2"), "--min-side", "32",
                 "--split-by", "source"]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "there are 1 source(s) (only 4)" in err


# --keep-split: add sources without changing val and test


def add_sources(raw: Path, root: Path, copy_of: str) -> Path:
    """raw's sources plus two new ones: 'new-a' (5 own scenes) and 'new-b', which holds a
    larger copy of `copy_of` (a held-out photo) and a second shot of another held-out scene."""
    import shutil

    shutil.copytree(raw, root)
    rng = np.random.default_rng(11)
    (root / "new-a").mkdir()
    for i in range(5):
        Image.fromarray(smooth_photo(rng)).save(root / "new-a" / f"a{i}.png")
    (root / "new-b").mkdir()
    big = Image.open(raw / copy_of).resize((192, 144), Image.Resampling.BICUBIC)
    big.save(root / "new-b" / "bigger_copy.png")
    return root


def test_keep_split_keeps_val_and_test_and_trains_on_new_sources(raw, fold0, tmp_path, capsys):
    out, rows = fold0
    report = json.loads((out / "prepare_report.json").read_text())["sources"]
    held = {r["original"]: r for r in rows if r["split"] in ("val", "test")}
    some_val = next(o for o, r in sorted(held.items()) if r["split"] == "val")
    more = add_sources(raw, tmp_path / "more", some_val)
    # a plain re-plan on more sources may move held-out sources; the kept plan does not
    again = prepared(more, tmp_path / "kept", keep_split=out)
    for split in ("val", "test"):
        assert [r for r in again if r["split"] == split] == [r for r in rows if r["split"] == split]
    trained = {r["source"] for r in again if r["split"] in ("train", "test_in")}
    assert {"new-a", "new-b"} - trained == {"new-b"}  # new-b's only photo copied a val photo
    new_report = json.loads((tmp_path / "kept" / "prepare_report.json").read_text())
    plan = new_report["sources"]
    assert plan["val"] == report["val"] and plan["test"] == report["test"]
    assert plan["added_to_training"] == ["new-a"]
    assert plan["kept_from"] == str(out / "prepare_report.json")
    assert new_report["settings"]["keep_split"] == str(out / "prepare_report.json")
    # the copy of the held-out photo went (the held-out one is kept, though smaller)
    dropped = {d["file"] for d in new_report["dropped"]["duplicate"]}
    assert "new-b/bigger_copy.png" in dropped
    # the command: same result, prints what it kept
    args = ["data", "prepare", str(more), str(tmp_path / "cli"), "--min-side", "32",
            "--val", "0.2", "--test", "0.2", "--keep-split", str(out)]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert f"val and test kept from {out / 'prepare_report.json'}" in printed
    assert "sources added to training: new-a" in printed
    assert read_manifest(tmp_path / "cli") == again


def test_keep_split_drops_training_shots_of_a_held_out_scene(raw, fold0, tmp_path):
    out, rows = fold0
    (held,) = [r for r in rows if r["original"] == "docs/shared_scene.png"]
    if held["split"] not in ("val", "test"):
        pytest.skip("the shared scene trains in this plan")
    more = tmp_path / "more"
    import shutil

    shutil.copytree(raw, more)
    # a third shot of the scene, a few pixels further along, in a new source
    b = np.asarray(Image.open(raw / "linked" / "same_scene_other_source.png"))
    shots = [np.concatenate([b[:, k:], b[:, -1:].repeat(k, axis=1)], axis=1) for k in (1, 2, 3)]
    c = next(c for c in shots if (same_scene(Look.of(b), Look.of(c)) or 1.0) < 0.97)
    (more / "linked-again").mkdir()
    Image.fromarray(c).save(more / "linked-again" / "same_scene_other_source.png")
    again = prepared(more, tmp_path / "kept", keep_split=out / "prepare_report.json")
    assert not [r for r in again if r["source"] == "linked-again"]
    report = json.loads((tmp_path / "kept" / "prepare_report.json").read_text())
    (leak,) = report["dropped"]["held_out_scene"]
    assert leak["file"] == "linked-again/same_scene_other_source.png"
    assert "held out" in leak["why"]


def test_keep_split_refuses_what_would_change_val_or_test(raw, fold0, tmp_path, capsys):
    out, rows = fold0
    plan = json.loads((out / "prepare_report.json").read_text())["sources"]
    gone = sorted(plan["test"])[0]
    import shutil

    fewer = tmp_path / "fewer"
    shutil.copytree(raw, fewer)
    shutil.rmtree(fewer / gone)
    with pytest.raises(UsageError, match=f"held-out source\\(s\\) {gone} of .* are not there"):
        prepared(fewer, tmp_path / "o", keep_split=out)
    assert not (tmp_path / "o").exists()  # refused before anything was written
    scene_run = tmp_path / "scene"
    prepare(raw, scene_run, min_side=32)
    with pytest.raises(UsageError, match="not the report of a `--split-by source` run"):
        prepared(raw, tmp_path / "o", keep_split=scene_run)
    with pytest.raises(UsageError, match="cannot read it"):
        prepared(raw, tmp_path / "o", keep_split=tmp_path / "missing.json")
    args = ["data", "prepare", str(raw), str(tmp_path / "o"), "--min-side", "32",
            "--keep-split", str(out)]  # fmt: skip
    for extra in (["--fold", "1"], ["--seed", "3"], ["--split-by", "scene"]):
        assert main([*args, *extra]) == 2
        err = capsys.readouterr().err
        assert "--keep-split takes the held-out sources from" in err and extra[0] in err


def test_keep_split_takes_a_file_with_only_the_plan(raw, fold0, tmp_path):
    """The plan alone (as experiments/study_split.json keeps it in the repo) is enough."""
    out, rows = fold0
    plan = json.loads((out / "prepare_report.json").read_text())["sources"]
    plan_file = tmp_path / "split.json"
    plan_file.write_text(json.dumps({"comment": "kept for a study", **plan}))
    again = prepared(raw, tmp_path / "kept", keep_split=plan_file)
    assert again == rows


def test_the_study_split_in_the_repo_is_a_plan():
    from pix2color.data.split import KeptSplit

    kept = KeptSplit.load(Path(__file__).parents[1] / "experiments" / "study_split.json")
    assert len(kept.val) == 11 and len(kept.test) == 6 and (kept.fold, kept.folds) == (0, 3)
    assert "kphotoalbum" in kept.test and "gimp-help-en" in kept.val
