"""One build reader (`cxrdata.io.layout.read_build`): how `--data` / OUT resolve, for every command that reads shards.

The rules, on a real two-config build (mimic + ms-cxr of the sample, one OUT): a build OUT, its data/ folder or
one config's shard folder; several folders: the first holding the config; no config named: the manifest's first
(the card's default, what `datasets.load_dataset(OUT)` loads); a bare folder of several configs has no default.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from cxrdata.api import load as api_load
from cxrdata.api import plans
from cxrdata.cli import main
from cxrdata.errors import CxrdataError
from cxrdata.io.layout import built_configs, read_build
from cxrdata.pipeline.build import BuildOptions, build
from cxrdata.sample.mimic import MimicSample


@pytest.fixture(scope="module")
def out(mimic_sample: MimicSample, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """mimic, then ms-cxr, built into one OUT in two tasks (so a split can have two shards)."""
    out = tmp_path_factory.mktemp("reader") / "out"
    build([*plans("mimic", out=out, root=mimic_sample.root, image_size=32),
           *plans("ms-cxr", out=out, root=mimic_sample.mscxr_csv["1.1.0"].parent, mimic_root=mimic_sample.root,
                  image_size=32)], BuildOptions(out=out, workers=1, tasks=2, quiet=True))
    return out


def shards(folder: Path) -> dict[str, tuple[Path, ...]]:
    found: dict[str, list[Path]] = {}
    for path in sorted(folder.glob("*.parquet")):
        found.setdefault(path.name.split("-")[0], []).append(path)
    return {split: tuple(paths) for split, paths in found.items()}


def one_line(message: str):
    return pytest.raises(CxrdataError, match=f"^{re.escape(message)}$")


def test_out_its_data_folder_and_a_config_folder_resolve_alike(out: Path) -> None:
    manifest = json.loads((out / "manifest.json").read_text())["configs"]
    assert list(manifest) == ["mimic", "ms-cxr"]
    assert list(built_configs(out)) == list(built_configs(out / "data")) == ["mimic", "ms-cxr"]
    for data in (out, out / "data", out / "data" / "mimic"):
        found = read_build(data)
        assert (found.name, found.folder, found.out) == ("mimic", out / "data" / "mimic", out)
        assert found.files == shards(out / "data" / "mimic") and found.manifest == manifest["mimic"]
    assert max(len(paths) for paths in found.files.values()) == 2  # two tasks: name order within a split
    ms_cxr = read_build(out / "data" / "ms-cxr")
    assert ms_cxr == read_build(out, "ms-cxr") == read_build(out / "data", "ms-cxr")
    assert ms_cxr.rejects_dir == out / "rejects" / "ms-cxr" and ms_cxr.manifest == manifest["ms-cxr"]
    assert ms_cxr.schema == "ms-cxr" and ms_cxr.splits == sorted(ms_cxr.files)
    assert ms_cxr.columns == pq.read_schema(ms_cxr.all_files[0]).names


def test_the_default_config_is_what_datasets_loads(out: Path) -> None:
    loaded = datasets.load_dataset(str(out))  # the dataset card's default config
    found = read_build(out)
    assert sorted(loaded) == sorted(found.splits)
    for split in found.splits:
        rows = sum(pq.read_metadata(p).num_rows for p in found.files[split])
        assert rows == len(loaded[split]) == len(found.dataset(split, ["id"])) > 0
        assert loaded[split]["id"] == found.dataset(split, ["id"])["id"] == api_load(out, split=split)["id"]
    folder = out / "data" / "ms-cxr"
    with one_line(f"config 'ms-cxr' ({folder}) has no split 'dev'; it has: {', '.join(shards(folder))}"):
        api_load(out, "ms-cxr", split="dev")


def test_several_folders_the_first_holding_the_config_wins(out: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    shutil.copytree(out / "data" / "ms-cxr", other / "data" / "ms-cxr")  # shards without a manifest
    first = read_build([other, out], "ms-cxr")
    assert (first.folder, first.out, first.manifest) == (other / "data" / "ms-cxr", other, {})
    assert read_build([out, other], "ms-cxr").folder == out / "data" / "ms-cxr"
    assert read_build([other, out], "mimic").folder == out / "data" / "mimic"
    assert read_build([other, out]).name == "ms-cxr"  # the first folder's default: its only config
    assert read_build([out / "data" / "mimic", other]).name == "mimic"


def test_a_bare_folder_of_several_configs_names_no_default(out: Path, tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    for name in ("ms-cxr", "mimic"):
        shutil.copytree(out / "data" / name, bare / "data" / name)
    assert list(built_configs(bare)) == ["mimic", "ms-cxr"]  # without a manifest: by name
    with one_line(f"{bare} holds several configs (mimic, ms-cxr) and no manifest naming a default; "
                  "choose one with --config"):
        read_build(bare)
    assert read_build(bare, "ms-cxr").folder == bare / "data" / "ms-cxr"


def test_unknown_configs_missing_splits_and_empty_folders_are_one_line(out: Path, tmp_path: Path) -> None:
    with one_line(f"no config 'nope' under {out}; found: mimic, ms-cxr"):
        read_build(out, "nope")
    with one_line(f"no config 'nope' under {out / 'data' / 'mimic'}, {out}; found: mimic, ms-cxr"):
        read_build([out / "data" / "mimic", out], "nope")
    folder = out / "data" / "ms-cxr"
    with one_line(f"config 'ms-cxr' ({folder}) has no split 'dev'; it has: {', '.join(shards(folder))}"):
        read_build(out, "ms-cxr").dataset("dev")
    with one_line(f"config 'ms-cxr' ({folder}) lacks column(s) nope needed here; it has: "
                  f"{', '.join(pq.read_schema(shards(folder)['test'][0]).names)}"):
        read_build(out, "ms-cxr").dataset("test", ["id", "nope"])
    with one_line(f"{tmp_path / 'missing'} does not exist or is not a folder"):
        read_build(tmp_path / "missing")
    (tmp_path / "empty" / "data" / "x").mkdir(parents=True)
    (tmp_path / "empty" / "data" / "x" / "notes.parquet").write_bytes(b"")  # not a shard name
    with one_line(f"no Parquet shards under {tmp_path / 'empty'} (give the --out of a cxrdata build)"):
        read_build(tmp_path / "empty")


def test_a_damaged_shard_is_one_line(out: Path, tmp_path: Path) -> None:
    copy = tmp_path / "damaged"
    shutil.copytree(out / "data" / "mimic", copy / "data" / "mimic")
    shard = shards(copy / "data" / "mimic")["train"][0]
    shard.write_bytes(shard.read_bytes()[:-100])
    with pytest.raises(CxrdataError, match=rf"^shard {shard} is not a readable Parquet file \(.*\): it is "
                                           r"truncated or damaged; rebuild that output$"):
        read_build(copy).dataset("train")


def test_every_command_resolves_data_the_same_way(out: Path, tmp_path: Path) -> None:
    """The same OUT and the same unknown --config give the same line in every command that reads a build."""
    pytest.importorskip("torch")
    commands = {
        "eval grounding": ["eval", "grounding", "--data", out, "--oracle", "--out", tmp_path / "g.csv"],
        "eval retrieval": ["eval", "retrieval", "--run", tmp_path, "--data", out],
        "preview": ["preview", out, "--out", tmp_path / "p.png"],
        "stats": ["stats", out],
        "train ldm": ["train", "ldm", "--tiny", "--data", out, "--run", tmp_path / "ldm", "--device", "cpu"],
        "heatmaps ldm": ["heatmaps", "ldm", "--frozen", "--ldm", tmp_path, "--clip", tmp_path, "--data", out,
                         "--out", tmp_path / "h", "--device", "cpu"],
    }
    for name, args in commands.items():
        result = CliRunner().invoke(main, [*map(str, args), "--config", "nope"])
        assert result.exit_code == 2 and "Traceback" not in result.output, (name, result.output)
        assert result.output.splitlines()[-1] == f"error: no config 'nope' under {out}; found: mimic, ms-cxr", name
    # ... and a config folder is an OUT of its own for each of them
    result = CliRunner().invoke(main, ["stats", str(out / "data" / "ms-cxr")])
    assert result.exit_code == 0 and "ms-cxr" in result.output and "mimic" not in result.output, result.output
    result = CliRunner().invoke(main, ["eval", "grounding", "--data", str(out / "data"), "--config", "ms-cxr",
                                       "--oracle", "--resamples", "10", "--out", str(tmp_path / "g.csv")])
    assert result.exit_code == 0, result.output
    scored = json.loads((tmp_path / "g.json").read_text())
    assert scored["config"] == "ms-cxr" and {r["id"] for r in scored["records"]} == {
        r["id"] for p in read_build(out, "ms-cxr").all_files for r in pq.read_table(p, columns=["id"]).to_pylist()}
