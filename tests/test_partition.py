"""Tasks are cut per split: each split's shard count follows its own size (issue 16, item 4)."""

from __future__ import annotations

import json
import pickle
import re
from collections import Counter

import polars as pl
import pyarrow.parquet as pq
import pytest
from cxrdata_testing import build_with, expected_rejects, read_records

from cxrdata.pipeline.partition import MIN_RECORDS_PER_TASK, auto_task_count, partition, stable_task
from cxrdata.records import RecordFrame

SHARD = re.compile(r"^(?P<split>[a-z]+)-(?P<i>\d{5})-of-(?P<n>\d{5})\.parquet$")


def raw_records(sizes: dict[str | None, int], per_patient: int = 3) -> list[dict]:
    """``sizes[split]`` records per split (None: no split), ``per_patient`` records to a patient."""
    records = []
    for split, n in sizes.items():
        for i in range(n):
            records.append({"id": f"{split}-{i}", "split": split, "_partition": f"{split}-p{i // per_patient}",
                            "_raw": {"row": len(records)}})
    return records


def by_split(tasks) -> dict[str, list]:
    found: dict[str, list] = {}
    for task in tasks:
        found.setdefault(task.split, []).append(task)
    return found


def smallest_task(records: list[dict], n: int) -> int:
    """The fewest records a task gets when ``records`` are hashed into ``n`` tasks by patient."""
    sizes = Counter(stable_task(r["_partition"], n) for r in records)
    return min(sizes.get(i, 0) for i in range(n))


SIZES = {"train": 400, "validation": 20, "test": 5, None: 3}


def test_each_split_is_cut_by_its_own_size():
    records = raw_records(SIZES)
    tasks = partition("c", records, records_per_task=4000)
    splits = by_split(tasks)
    assert list(splits) == ["test", "train", "unknown", "validation"]
    assert [len(splits[s]) for s in ("test", "unknown")] == [1, 1]  # fewer than 8 records: one task
    assert [len(t.records) for t in splits["test"]] == [5] and [len(t.records) for t in splits["unknown"]] == [3]
    for split, own in splits.items():
        n = len(own)
        assert [(t.index, t.count, t.name) for t in own] == [(i, n, f"{split}-{i:05d}") for i in range(n)]
        assert {r["split"] or "unknown" for t in own for r in t.records} == {split}
        if n > 1:
            assert min(len(t.records) for t in own) >= MIN_RECORDS_PER_TASK
    train = [r for r in records if r["split"] == "train"]
    n_train = len(splits["train"])
    assert 1 < n_train <= auto_task_count(400, 4000) == 16
    # the most tasks that give every task 8 records: one more would leave a task short
    assert all(smallest_task(train, n) < MIN_RECORDS_PER_TASK for n in range(n_train + 1, 17))
    # records go to the task of their patient's hash, as before the cut per split
    assert all(t.index == stable_task(r["_partition"], n_train) for t in splits["train"] for r in t.records)
    assert sorted(r["id"] for t in tasks for r in t.records) == sorted(r["id"] for r in records)


def test_tasks_are_shared_by_split_size_and_never_make_a_task_of_under_8():
    """``--tasks N``: about N in all, each split its share rounded up (so at most N per split)."""
    records = raw_records(SIZES)
    counts = {s: len(t) for s, t in by_split(partition("c", records, 4000, tasks=3)).items()}
    assert counts == {"test": 1, "train": 3, "unknown": 1, "validation": 1}  # validation: 20 of 428 records
    counts = {s: len(t) for s, t in by_split(partition("c", records, 4000, tasks=40)).items()}
    train = [r for r in records if r["split"] == "train"]
    validation = [r for r in records if r["split"] == "validation"]
    assert counts["train"] == max(n for n in range(1, 39) if smallest_task(train, n) >= 8)  # share: 38
    assert counts["validation"] == (2 if smallest_task(validation, 2) >= 8 else 1)  # share: 2
    assert counts["test"] == counts["unknown"] == 1
    assert {s: len(t) for s, t in by_split(partition("c", records, 4000, tasks=1)).items()} == \
        {"test": 1, "train": 1, "unknown": 1, "validation": 1}
    # one split of 16 records and --tasks 2: two tasks only when the hash gives each 8
    sixteen = raw_records({"train": 16}, per_patient=1)
    assert len(partition("c", sixteen, 4000, tasks=2)) == (2 if smallest_task(sixteen, 2) >= 8 else 1)


def test_a_frame_is_cut_as_its_records_are():
    records = raw_records(SIZES)
    frame = RecordFrame(pl.DataFrame({
        "id": [r["id"] for r in records],
        "split": pl.Series([r["split"] for r in records], dtype=pl.String).cast(pl.Categorical),
        "_partition": [r["_partition"] for r in records],
        "row": [r["_raw"]["row"] for r in records],
    }))
    from_list = partition("c", records, 100)
    from_frame = partition("c", frame, 100)
    assert [(t.name, t.count) for t in from_frame] == [(t.name, t.count) for t in from_list]
    assert [t.records.column("id") for t in from_frame] == [[r["id"] for r in t.records] for t in from_list]
    assert [(t.name, [r["id"] for r in t.records]) for t in partition("c", records, 100)] == \
        [(t.name, [r["id"] for r in t.records]) for t in from_list], "the same cut on every call"
    assert partition("c", [], 100) == []


def test_a_frames_tasks_are_views_that_pickle_only_their_rows():
    records = raw_records(SIZES)
    frame = RecordFrame(pl.DataFrame({"id": [r["id"] for r in records], "split": [r["split"] for r in records],
                                      "_partition": [r["_partition"] for r in records],
                                      "row": [r["_raw"]["row"] for r in records]}))
    tasks = partition("c", frame, 100)
    assert all(t.records.frame is frame.frame for t in tasks), "cutting copies nothing"
    assert sorted(i for t in tasks for i in t.records.column("id")) == sorted(frame.column("id"))
    for task in tasks:
        sent = pickle.loads(pickle.dumps(task))
        assert sent.records.rows is None and sent.records.frame.height == len(task.records)
        assert sent.records[0 : len(sent.records)] == task.records[0 : len(task.records)]
        assert task.records[1:3] == sent.records[1:3]


def _shards(out, config: str) -> dict[str, list[tuple[int, int, int]]]:
    """split -> (i, n, rows) of each shard file, in name order."""
    found: dict[str, list[tuple[int, int, int]]] = {}
    for path in sorted((out / "data" / config).glob("*.parquet")):
        match = SHARD.match(path.name)
        assert match, path.name
        found.setdefault(match["split"], []).append((int(match["i"]), int(match["n"]), pq.read_metadata(path).num_rows))
    return found


def test_a_small_split_is_one_shard_and_a_big_one_several_of_8_or_more(mimic_build):
    out = mimic_build.out
    manifest = json.loads((out / "manifest.json").read_text())["configs"]["mimic"]
    written = {s: c["written"] for s, c in manifest["counts"]["splits"].items()}
    assert written == {"test": 5, "train": 21, "unknown": 0, "validation": 4}
    assert manifest["tasks"] == {"test": 1, "train": 2, "unknown": 1, "validation": 1}
    shards = _shards(out, "mimic")
    assert shards["test"] == [(0, 1, 5)] and shards["validation"] == [(0, 1, 4)]
    assert [(i, n) for i, n, _ in shards["train"]] == [(0, 2), (1, 2)]
    assert all(rows >= MIN_RECORDS_PER_TASK for _, _, rows in shards["train"])
    assert sum(rows for _, _, rows in shards["train"]) == 21
    assert sorted(p.name for p in (out / "tasks" / "mimic").iterdir()) == \
        ["test-00000.json", "train-00000.json", "train-00001.json", "unknown-00000.json", "validation-00000.json"]

    import datasets

    loaded = datasets.load_dataset(str(out))
    assert sorted(loaded) == ["test", "train", "validation"]
    records = read_records(out, "mimic")
    for split, ds in loaded.items():
        assert ds.num_rows == written[split]
        assert sorted(ds["id"]) == sorted(i for i, r in records.items() if r["split"] == split)


def test_tasks_caps_shards_per_split_and_rejects_are_named_after_their_task(mimic_sample, mimic_build, tmp_path):
    result = build_with("mimic", tmp_path / "out", root=mimic_sample.root, image_size=32, tasks=1)
    out = result.out
    assert {s: [(i, n) for i, n, _ in v] for s, v in _shards(out, "mimic").items()} == \
        {"test": [(0, 1)], "train": [(0, 1)], "validation": [(0, 1)]}
    rejects = {p.name: pq.read_table(p).to_pylist() for p in sorted((out / "rejects" / "mimic").glob("*.parquet"))}
    assert {r["record_id"]: r["reason"] for r in rejects["unknown-00000.parquet"]} == \
        {mimic_sample.missing_split: "split_missing"}
    assert all(name == f"{r['split']}-00000.parquet" for name, rows in rejects.items() for r in rows)
    assert {r["record_id"]: r["reason"] for rows in rejects.values() for r in rows} == expected_rejects(mimic_sample)
    assert sorted(read_records(out, "mimic")) == sorted(read_records(mimic_build.out, "mimic"))
    totals = result.results[0].totals
    assert totals.read == totals.written + totals.rejected == mimic_sample.frontal_images


@pytest.mark.parametrize("victim", ["train-00001", "test-00000"])
def test_a_lost_marker_reruns_only_its_task(mimic_sample, tmp_path, victim):
    out = tmp_path / "out"
    first = build_with("mimic", out, root=mimic_sample.root, image_size=32)
    expected = read_records(out, "mimic")
    (out / "tasks" / "mimic" / f"{victim}.json").unlink()
    (out / "manifest.json").unlink()
    again = build_with("mimic", out, root=mimic_sample.root, image_size=32)
    assert again.results[0].tasks_run == 1 and again.results[0].tasks == first.results[0].tasks == 5
    assert read_records(out, "mimic") == expected
    totals = again.results[0].totals
    assert (totals.read, totals.written, totals.rejected) == \
        (mimic_sample.frontal_images, len(expected), len(expected_rejects(mimic_sample)))
