"""`train lofi`: tiny CPU runs from real sample shards — losses, targets, exact resume, errors, box predictions."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from click.testing import CliRunner
from lofi_testing import (  # noqa: F401 - fixtures
    STEPS,
    TinyRun,
    lofi_shards_fixture,
    lofi_tiny_run_fixture,
    one_thread_fixture,
    run_torchrun,
    torchrun_example,
)

from cxrdata.cli import main
from cxrdata.errors import CxrdataError
from cxrdata.models.checkpoints import latest_checkpoint, load_checkpoint
from cxrdata.models.lofi_predict import predict_boxes
from cxrdata.targets.box_text import bin_size, boxes_to_text, special_tokens
from cxrdata.targets.regions import GROUNDING_PROMPT, sample_region_pair
from cxrdata.train.common import read_metrics
from cxrdata.train.lofi import TrainOptions, prepare, train_lofi
from cxrdata.train.lofi_data import TASK_IDS, MixPlan
from cxrdata.train.lofi_losses import IGNORE, sigmoid_loss, token_loss
from cxrdata.train.lofi_recipe import check_recipe, load_lofi_recipe

CPU = torch.device("cpu")


def _tiny_weights(run: Path) -> dict[str, Path]:
    return {"vision": run / "weights" / "siglip", "text": run / "weights" / "siglip", "llm": run / "weights" / "llm"}


@pytest.fixture(scope="module")
def prepared(lofi_tiny_run: TinyRun):
    """The tiny run's recipe, weights and data pipeline, rebuilt in-process."""
    recipe = load_lofi_recipe("lofi-tiny")
    return prepare(recipe, [lofi_tiny_run.data], _tiny_weights(lofi_tiny_run.run), CPU)[0]


def test_cli_run_writes_checkpoint_metrics_tensorboard(lofi_tiny_run: TinyRun) -> None:
    run = lofi_tiny_run.run
    assert "mimic 21 rows, ms-cxr 16 rows" in lofi_tiny_run.output
    assert "optional, not found: padchest-gr-lofi-regions or padchest-gr" in lofi_tiny_run.output
    assert latest_checkpoint(run).name == f"step-{STEPS:07d}.pt"
    rows = read_metrics(run)
    assert [int(r["step"]) for r in rows] == list(range(1, STEPS + 1))
    assert {"loss", "sigmoid", "caption", "location", "lr", "grad_norm", "step_s", "samples_per_s"} <= set(rows[0])
    for r in rows:
        assert np.isfinite([r["loss"], r["sigmoid"], r["caption"], r["location"]]).all()
        assert r["loss"] == pytest.approx(r["sigmoid"] + r["caption"] + r["location"], rel=1e-5)
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    config = json.loads((run / "config.json").read_text())
    assert config["tiny"] and config["weights"]["llm"] == "weights/llm"
    assert config["recipe"]["targets"]["box_format"] == "lofi"


@pytest.fixture(scope="module")
def lofi_region_outs(mimic_sample, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """`build ms-cxr|padchest-gr --recipe lofi-regions` of the samples, each into its own OUT (as a user does)."""
    from cxrdata.sample.padchest_gr import write_padchest_gr_sample

    base = tmp_path_factory.mktemp("lofi-region-outs")
    padchest = write_padchest_gr_sample(base / "padchest-gr", studies=12, seed=0)
    outs = {"lofi-ms-cxr": base / "lofi-ms-cxr", "lofi-padchest-gr": base / "lofi-padchest-gr"}
    for args in (["ms-cxr", "--root", str(mimic_sample.mscxr_csv["1.1.0"].parent), "--mimic-root",
                  str(mimic_sample.root), "--out", str(outs["lofi-ms-cxr"])],
                 ["padchest-gr", "--root", str(padchest.root), "--out", str(outs["lofi-padchest-gr"])]):
        result = CliRunner().invoke(main, ["build", *args, "--recipe", "lofi-regions", "--image-size", "128",
                                           "--workers", "1", "--quiet",
                                           "--max-reject-share", "1"])  # the samples carry their defects
        assert result.exit_code == 0, result.output
    return outs


def test_region_data_built_for_lofi_trains_the_location_loss(lofi_shards: Path, lofi_region_outs: dict[str, Path],
                                                              tmp_path: Path) -> None:
    """`train lofi --data mimic --data lofi-ms-cxr --data lofi-padchest-gr` finds the `*-lofi-regions` configs."""
    mimic = lofi_shards / "data" / "mimic"  # the mimic config alone: its OUT also holds a plain ms-cxr
    run = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", "lofi", "--tiny", "--data", str(mimic),
                                       "--data", str(lofi_region_outs["lofi-ms-cxr"]),
                                       "--data", str(lofi_region_outs["lofi-padchest-gr"]),
                                       "--run", str(run), "--max-steps", "3", "--quiet", "--device", "cpu"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    folder = lofi_region_outs["lofi-padchest-gr"] / "data" / "padchest-gr-lofi-regions"
    padchest_rows = sum(pq.read_metadata(f).num_rows for f in folder.glob("train-*.parquet"))
    assert f"mimic 21 rows, ms-cxr-lofi-regions 16 rows, padchest-gr-lofi-regions {padchest_rows} rows" \
        in result.output and padchest_rows > 0
    assert "optional, not found" not in result.output
    rows = read_metrics(run)
    assert [int(r["step"]) for r in rows] == [1, 2, 3]
    assert all(r["location"] > 0.5 for r in rows), rows  # a token cross-entropy of a tiny random LM: ~ln(vocab)


def test_a_loss_without_data_refuses_to_start(lofi_shards: Path, lofi_region_outs: dict[str, Path],
                                              tmp_path: Path) -> None:
    mimic = lofi_shards / "data" / "mimic"
    result = CliRunner().invoke(main, ["train", "lofi", "--tiny", "--data", str(mimic), "--run", str(tmp_path / "a"),
                                       "--max-steps", "1", "--quiet", "--device", "cpu"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    [line] = [x for x in result.output.splitlines() if x.startswith("error:")]
    assert line.startswith("error: loss 'location' has weight 1 but no train rows of task 'regions': looked for "
                           "ms-cxr-lofi-regions or ms-cxr; padchest-gr-lofi-regions or padchest-gr under ")
    assert "--recipe lofi-regions" in line and not list((tmp_path / "a").glob("weights/*"))
    # ... and the report losses need report rows just as much
    recipe = load_lofi_recipe("lofi-tiny")
    recipe["data"]["sources"] = [s for s in recipe["data"]["sources"] if s["task"] == "regions"]
    with pytest.raises(CxrdataError, match=r"loss 'sigmoid' has weight 1 but no train rows of task 'report'"):
        prepare(recipe, [lofi_region_outs["lofi-ms-cxr"]], {}, CPU)
    recipe["loss"].update(sigmoid=0.0, caption=0.0)
    with pytest.raises(CxrdataError, match="--vision PATH is required"):  # past the data checks
        prepare(recipe, [lofi_region_outs["lofi-ms-cxr"]], {}, CPU)


def test_resume_continues_exactly(lofi_tiny_run: TinyRun, tmp_path: Path) -> None:
    """2 steps + 2 resumed steps == the 4 straight steps of the CLI run: parameters, AdamW, schedule, losses."""
    run = tmp_path / "resumed"
    first = train_lofi(TrainOptions(data=[lofi_tiny_run.data], run=run, tiny=True, max_steps=2, device="cpu"))
    second = train_lofi(TrainOptions(data=[], run=run, resume=True, max_steps=STEPS, device="cpu"))
    assert (first.step, second.start_step, second.step) == (2, 2, STEPS)
    straight = load_checkpoint(latest_checkpoint(lofi_tiny_run.run))
    resumed = load_checkpoint(latest_checkpoint(run))
    assert straight["model"].keys() == resumed["model"].keys()
    for name, value in straight["model"].items():
        torch.testing.assert_close(resumed["model"][name], value, rtol=0, atol=1e-6, msg=name)
    for a, b in zip(straight["optimizer"]["state"].values(), resumed["optimizer"]["state"].values(), strict=True):
        torch.testing.assert_close(a["exp_avg_sq"], b["exp_avg_sq"], rtol=0, atol=1e-12)
    assert straight["scheduler"]["last_epoch"] == resumed["scheduler"]["last_epoch"] == STEPS
    want = [r["loss"] for r in read_metrics(lofi_tiny_run.run)]
    assert first.losses + second.losses == pytest.approx(want, abs=1e-6)
    assert [int(r["step"]) for r in read_metrics(run)] == list(range(1, STEPS + 1))


def test_existing_run_needs_resume(lofi_tiny_run: TinyRun) -> None:
    with pytest.raises(CxrdataError, match="--resume"):
        train_lofi(TrainOptions(data=[lofi_tiny_run.data], run=lofi_tiny_run.run, tiny=True, max_steps=1))


def test_loss_goes_down_on_a_fixed_batch(prepared) -> None:
    model, examples, collator = prepared.model, prepared.examples, prepared.collator
    torch.manual_seed(0)
    plan = prepared.plan.epoch(0)
    sources = [int(s) for s, _ in plan[:12]]
    assert {0, 1} <= set(sources), "the batch mixes report and region examples"
    batch = collator([examples[(0, i)] for i in range(12)])
    before = copy.deepcopy(model.trainable_state())
    optimizer = torch.optim.AdamW([p for _, p in model.trainable_parameters()], lr=3e-3)
    weights = {"sigmoid": 1.0, "caption": 1.0, "location": 1.0}
    history = []
    model.train()
    for _ in range(20):
        out = model(batch, weights)
        out["loss"].backward()
        optimizer.step()
        optimizer.zero_grad()
        history.append({k: float(v.detach()) for k, v in out.items()})
    model.load_trainable_state(before)
    assert history[-1]["loss"] < 0.85 * history[0]["loss"]
    for key in ("sigmoid", "caption", "location"):
        assert history[-1][key] < 0.95 * history[0][key], key


def test_sequences_put_visual_tokens_at_the_placeholders(prepared) -> None:
    model, examples, collator = prepared.model, prepared.examples, prepared.collator
    items = [examples[(0, i)] for i in range(6)]
    batch = collator(items)
    k = model.num_image_tokens
    assert k == 16  # 64 px / patch 8 = 8x8 patches, 2x2 pooled
    tok = model.tokenizer
    for row, item in zip(range(len(items)), items, strict=True):
        ids, labels = batch["input_ids"][row], batch["labels"][row]
        assert ids[0] == tok.bos_token_id and (ids[1:k + 1] == model.image_token_id).all()
        assert (ids == model.image_token_id).sum() == k
        kept = labels[labels != IGNORE].tolist()
        full = tok(item["target"], add_special_tokens=False)["input_ids"]
        if len(full) <= 48:  # lofi-tiny's max_target_tokens
            assert kept == [*full, tok.eos_token_id]
        else:  # truncated: no eos
            assert kept == full[:48]
        assert batch["task"][row] == TASK_IDS[item["task"]]
    visual = torch.randn(len(items), k, model.llm.get_base_model().config.hidden_size)
    embeds = model.embed_sequence(batch["input_ids"], visual)
    torch.testing.assert_close(embeds[batch["input_ids"] == model.image_token_id], visual.reshape(-1, visual.shape[-1]))
    reports = [i for i, e in enumerate(items) if e["task"] == "report"]
    assert batch["report_rows"].tolist() == reports
    assert batch["text_ids"].shape == (len(reports), 32)


def test_greedy_generation_is_independent_of_left_padding(prepared) -> None:
    model, collator = prepared.model, prepared.collator
    before = copy.deepcopy(model.trainable_state())
    torch.manual_seed(0)
    with torch.no_grad():  # random adapters: less degenerate than the 4-step tiny run
        for _, p in model.trainable_parameters():
            p.add_(torch.randn_like(p))
    model.eval()
    pixels = torch.randn(2, 3, 64, 64)
    short = collator.prompt_ids(GROUNDING_PROMPT.format(phrase="x"))
    long = collator.prompt_ids(GROUNDING_PROMPT.format(phrase="a much longer phrase about the left lower lobe"))
    both = model.generate(pixels, [short, long], 6)
    alone = [model.generate(pixels[:1], [short], 6)[0], model.generate(pixels[1:], [long], 6)[0]]
    model.load_trainable_state(before)
    model.train()
    assert both == alone and all(len(ids) <= 6 for ids in both)


def test_targets_are_seeded_per_record_and_epoch(prepared) -> None:
    examples = prepared.examples
    plan = prepared.plan
    assert np.array_equal(plan.epoch(0), MixPlan(plan.sizes, plan.weights, plan.seed).epoch(0))
    assert not np.array_equal(plan.epoch(0), plan.epoch(1))
    regions = next(s for s in prepared.sources if s.spec.task == "regions")
    s = prepared.sources.index(regions)
    for epoch in (0, 1, 2):
        got = examples.example(s, 0, epoch)
        width, height = regions.sizes[0]
        want = sample_region_pair(regions.ids[0], regions.regions[0], width, height, "lofi", 0, epoch, 0.5)
        assert (got["task"], got["prompt"], got["target"]) == (want.task, want.prompt, want.target)
        assert examples.example(s, 0, epoch)["target"] == got["target"]
    tasks = {examples.example(s, i, e)["task"] for i in range(len(regions)) for e in range(3)}
    assert tasks == {"grounding", "dense_caption"}


def test_sigmoid_loss_is_siglips() -> None:
    from transformers import SiglipConfig, SiglipModel

    torch.manual_seed(0)
    model = SiglipModel(SiglipConfig(
        text_config={"vocab_size": 50, "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "max_position_embeddings": 8},
        vision_config={"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                       "image_size": 16, "patch_size": 8})).eval()
    ids, pixels = torch.randint(0, 50, (4, 8)), torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        out = model(input_ids=ids, pixel_values=pixels, return_loss=True)
        mine = sigmoid_loss(out.image_embeds, out.text_embeds, model.logit_scale, model.logit_bias)
    torch.testing.assert_close(mine, out.loss)
    # groups: two images of one study are both positives of its report (the diagonal version would punish it)
    x = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    scale, bias = torch.tensor(np.log(10.0)), torch.tensor(-5.0)
    grouped = sigmoid_loss(x, x, scale, bias, torch.tensor([0, 0, 1]))
    assert grouped < sigmoid_loss(x, x, scale, bias)


def test_chunked_token_loss_equals_the_plain_one() -> None:
    torch.manual_seed(0)
    head = torch.nn.Linear(8, 50)
    hidden, labels = torch.randn(11, 8, requires_grad=True), torch.randint(0, 50, (11,))
    plain = torch.nn.functional.cross_entropy(head(hidden), labels)
    (g_plain,) = torch.autograd.grad(plain, hidden)
    chunked = token_loss(hidden, labels, head, chunk=3)
    (g_chunked,) = torch.autograd.grad(chunked, hidden)
    torch.testing.assert_close(chunked, plain)
    torch.testing.assert_close(g_chunked, g_plain)


def test_token_box_format_adds_trainable_tokens(lofi_tiny_run: TinyRun) -> None:
    recipe = load_lofi_recipe("lofi-tiny")
    recipe["targets"]["box_format"] = "florence2"
    p = prepare(recipe, [lofi_tiny_run.data], _tiny_weights(lofi_tiny_run.run), CPU)[0]
    tok, model = p.model.tokenizer, p.model
    ids = tok.convert_tokens_to_ids(list(special_tokens("florence2")))
    assert len(set(ids)) == 1000 and tok.unk_token_id not in ids
    assert model.llm.get_base_model().get_input_embeddings().weight.shape[0] >= len(tok)
    assert any("trainable_tokens" in n for n, _ in model.trainable_parameters())
    assert tok.decode(tok("<loc_12><loc_999>", add_special_tokens=False)["input_ids"]) == "<loc_12><loc_999>"
    region = next(i for i in range(p.plan.epoch_len) if p.examples[(0, i)]["task"] != "report")
    example = p.examples[(0, region)]
    assert "<loc_" in example["prompt"] + example["target"]
    out = model(p.collator([example, p.examples[(0, 0)]]), {"sigmoid": 1.0, "caption": 1.0, "location": 1.0})
    out["loss"].backward()
    grads = [q.grad for n, q in model.trainable_parameters() if "trainable_tokens" in n]
    assert grads and all(g is not None and g.abs().sum() > 0 for g in grads)


def test_missing_weights_name_the_flag_and_the_way_to_get_them(lofi_tiny_run: TinyRun, tmp_path: Path) -> None:
    lofi_shards, run = lofi_tiny_run.data, lofi_tiny_run.run
    result = CliRunner().invoke(main, ["train", "lofi", "--data", str(lofi_shards), "--run", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert "--vision PATH is required" in result.output and "siglip2-so400m-patch16-512" in result.output
    (tmp_path / "empty").mkdir()
    with pytest.raises(CxrdataError, match=r"--llm .*config.json missing.*gemma-3-270m"):
        train_lofi(TrainOptions(data=[lofi_shards], run=tmp_path / "r2", vision=_tiny_weights(run)["vision"],
                                llm=tmp_path / "empty"))


def test_hub_ids_come_from_the_local_cache_only(lofi_tiny_run: TinyRun, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from cxrdata.models.lofi_towers import model_folder

    snapshot = tmp_path / "hub" / "models--acme--tiny-llm" / "snapshots" / "abc123"
    shutil.copytree(lofi_tiny_run.run / "weights" / "llm", snapshot)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("abc123")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    assert model_folder("acme/tiny-llm", "llm", "--llm") == snapshot
    with pytest.raises(CxrdataError, match="neither a folder nor a model in the local Hugging Face cache"):
        model_folder("acme/not-cached", "llm", "--llm")


def test_shards_without_the_needed_columns_are_refused(tmp_path: Path) -> None:
    folder = tmp_path / "out" / "data" / "mimic"
    folder.mkdir(parents=True)
    pq.write_table(pa.table({"id": ["a"], "split": ["train"], "image": [{"bytes": b"", "path": None}]}),
                   folder / "train-00000-of-00001.parquet")
    with pytest.raises(CxrdataError, match=r"config 'mimic' has no report column .*findings"):
        train_lofi(TrainOptions(data=[tmp_path / "out"], run=tmp_path / "run", tiny=True, max_steps=1))
    region_folder = tmp_path / "out" / "data" / "ms-cxr"
    region_folder.mkdir(parents=True)
    pq.write_table(pa.table({"id": ["a"], "phrase": ["x"]}), region_folder / "train-00000-of-00001.parquet")
    recipe = load_lofi_recipe("lofi-tiny")
    recipe["data"]["sources"] = [{"config": "ms-cxr", "task": "regions"}]
    with pytest.raises(CxrdataError, match=r"needs 'regions', or 'boxes' \+ 'phrase'"):
        prepare(recipe, [tmp_path / "out"], {}, CPU)


def _mimic_copy(lofi_shards: Path, out: Path, change=None) -> Path:
    """The sample's mimic train split as one shard under ``out`` (``change(rows)`` edits the rows first)."""
    files = sorted((lofi_shards / "data" / "mimic").glob("train-*.parquet"))
    table = pa.concat_tables([pq.read_table(f) for f in files])
    rows = table.to_pylist()
    if change is not None:
        change(rows)
    folder = out / "data" / "mimic"
    folder.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), folder / "train-00000-of-00001.parquet")
    return out


def _train_cli(tmp_path: Path, *args: str):
    result = CliRunner().invoke(main, ["train", "lofi", "--tiny", "--max-steps", "1", "--quiet", "--device", "cpu",
                                       "--run", str(tmp_path / f"run{len(list(tmp_path.iterdir()))}"), *args])
    assert "Traceback" not in result.output, result.output
    errors = [x for x in result.output.splitlines() if x.startswith("error:")]
    return result, (errors[0] if errors else None)


def test_damaged_shards_are_one_line_or_counted_skips(lofi_shards: Path, tmp_path: Path) -> None:
    """Zero rows / a truncated shard / undecodable image bytes: one line, exit 2. Null images: counted skips."""
    ms_cxr = ["--data", str(lofi_shards / "data" / "ms-cxr")]
    zero = _mimic_copy(lofi_shards, tmp_path / "zero", lambda rows: rows.clear())
    result, line = _train_cli(tmp_path, "--data", str(zero), *ms_cxr)
    assert result.exit_code == 2 and line.startswith(
        "error: loss 'sigmoid' has weight 1 but no train rows of task 'report': looked for mimic (0 usable rows) ")
    truncated = _mimic_copy(lofi_shards, tmp_path / "truncated")
    [shard] = (truncated / "data" / "mimic").glob("*.parquet")
    shard.write_bytes(shard.read_bytes()[:-100])
    result, line = _train_cli(tmp_path, "--data", str(truncated), *ms_cxr)
    assert result.exit_code == 2 and line.startswith(f"error: shard {shard} is not a readable Parquet file")
    assert "truncated or damaged; rebuild that output" in line

    def null_every_third(rows: list[dict]) -> None:
        for k, row in enumerate(rows):
            if k % 3 == 0:
                row["image"] = None

    nulls = _mimic_copy(lofi_shards, tmp_path / "nulls", null_every_third)
    result, line = _train_cli(tmp_path, "--data", str(nulls), *ms_cxr)
    assert result.exit_code == 0 and line is None, result.output
    assert "sources: mimic 14 rows (7 no_image left out), ms-cxr 16 rows" in result.output

    def garble(rows: list[dict]) -> None:
        for row in rows:
            row["image"] = {"bytes": b"\xff\xd8 not a JPEG", "path": row["image"]["path"]}

    garbled = _mimic_copy(lofi_shards, tmp_path / "garbled", garble)
    result, line = _train_cli(tmp_path, "--data", str(garbled), *ms_cxr)
    assert result.exit_code == 2 and re.fullmatch(r"error: record \S+ of mimic: its image does not decode \(.*\); "
                                                  r"rebuild that output", line), line


def test_llm_folders_without_a_usable_tokenizer_are_one_line(lofi_tiny_run: TinyRun, tmp_path: Path) -> None:
    import shutil

    weights = lofi_tiny_run.run / "weights"
    llm = tmp_path / "llm"
    llm.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(weights / "llm" / name, llm / name)
    base = ["--data", str(lofi_tiny_run.data), "--vision", str(weights / "siglip"), "--llm", str(llm)]
    result = CliRunner().invoke(main, ["train", "lofi", "--run", str(tmp_path / "a"), "--max-steps", "1", *base])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"error: --llm {llm}: no tokenizer files (none of tokenizer.json, tokenizer.model, spiece.model" \
        in result.output
    shutil.copy(weights / "llm" / "tokenizer_config.json", llm)
    (llm / "tokenizer.json").write_text("{")  # cut short
    result = CliRunner().invoke(main, ["train", "lofi", "--run", str(tmp_path / "b"), "--max-steps", "1", *base])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"error: --llm {llm}: its tokenizer does not load (" in result.output


def test_recipe_keys_are_checked() -> None:
    recipe = load_lofi_recipe("lofi")
    assert recipe["optim"]["lr"] == 3e-4 and recipe["optim"]["weight_decay"] == 0.01
    assert recipe["train"]["batch_size"] == 64 and recipe["train"]["epochs"] == 10
    assert (recipe["model"]["vision_lora"]["r"], recipe["model"]["llm_lora"]["r"]) == (16, 4)
    assert recipe["loss"] == {"sigmoid": 1.0, "caption": 1.0, "location": 1.0}
    bad = copy.deepcopy(recipe)
    bad["optim"]["learning_rate"] = 1e-3
    with pytest.raises(CxrdataError, match=r"unknown .*learning_rate"):
        check_recipe(bad)
    bad = copy.deepcopy(recipe)
    bad["targets"]["box_format"] = "yolo"
    with pytest.raises(CxrdataError, match="box_format"):
        check_recipe(bad)


def test_predicted_boxes_file(lofi_tiny_run: TinyRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Generated box text is decoded with text_to_boxes into canonical boxes; unparsable text is recorded."""
    import pyarrow.parquet as pq

    from cxrdata.models.lofi_model import LofiModel

    columns = ["id", "boxes", "phrase", "original_width", "original_height"]
    rows = [r for f in sorted((lofi_tiny_run.data / "data" / "ms-cxr").glob("test-*.parquet"))
            for r in pq.read_table(f, columns=columns).to_pylist()]
    texts = {GROUNDING_PROMPT.format(phrase=r["phrase"]):
             boxes_to_text(r["boxes"], r["original_width"], r["original_height"]) for r in rows}
    texts[GROUNDING_PROMPT.format(phrase=rows[0]["phrase"])] = "[[1,2,3"  # one malformed answer
    seen = {}

    def fake_generate(self, pixel_values, prompt_ids, max_new_tokens):
        assert pixel_values.shape[1:] == (3, 64, 64)
        out = []
        for ids in prompt_ids:
            prompt = self.tokenizer.decode(ids).rstrip("\n")
            seen[prompt] = True
            out.append(self.tokenizer(texts[prompt], add_special_tokens=False)["input_ids"])
        return out

    monkeypatch.setattr(LofiModel, "generate", fake_generate)
    doc = predict_boxes(lofi_tiny_run.run, [lofi_tiny_run.data], "ms-cxr", "test", tmp_path / "boxes.json",
                        batch_size=3, device="cpu")
    assert json.loads((tmp_path / "boxes.json").read_text()) == doc
    assert doc["format"] == "cxrdata-boxes/1" and doc["box_format"] == "lofi" and doc["step"] == STEPS
    assert set(doc["records"]) == {r["id"] for r in rows} and len(seen) == len({r["phrase"] for r in rows})
    for r in rows:
        pred = doc["records"][r["id"]]
        if pred["text"] == "[[1,2,3":
            assert pred["boxes"] == [] and "not a lofi box list" in pred["error"]
            continue
        assert pred["error"] is None
        bx, by = bin_size("lofi", r["original_width"], r["original_height"])
        got, want = np.array(pred["boxes"]), np.array(sorted(map(tuple, r["boxes"])))
        assert np.abs(got - want).max() <= max(bx, by)
    # ... and `eval grounding --boxes` scores the file: the decoded boxes' masks against the true boxes
    out = tmp_path / "grounding.csv"
    result = CliRunner().invoke(main, ["eval", "grounding", "--data", str(lofi_tiny_run.data), "--config", "ms-cxr",
                                       "--split", "test", "--boxes", str(tmp_path / "boxes.json"), "--out", str(out),
                                       "--resamples", "50"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    scores = {r["id"]: r for r in json.loads(out.with_suffix(".json").read_text())["records"]}
    assert set(scores) == {r["id"] for r in rows}
    for r in rows:
        if doc["records"][r["id"]]["error"]:
            assert scores[r["id"]]["miou"] == 0.0
        else:
            assert scores[r["id"]]["miou"] > 0.9


@pytest.mark.slow
def test_the_help_examples_torchrun_runs_two_cpu_processes(lofi_tiny_run: TinyRun, tmp_path: Path) -> None:
    """`train lofi --help`'s torchrun example on the CPU, 2 gloo processes, --tiny: the global batch of 8 is split
    4 + 4, both ranks run both steps, rank 0 alone writes the run (once), and it resumes like a one-process run."""
    run = tmp_path / "ddp"
    argv = torchrun_example("train lofi", {"N": "2", "OUT": str(lofi_tiny_run.data), "RUN": str(run)})
    assert "--run" not in argv and "--standalone" in argv and argv[-4:] == ["--vision", "SIGLIP", "--llm", "LLM"]
    done = run_torchrun([*argv[:-4], "--tiny", "--max-steps", "2", "--device", "cpu"], tmp_path)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "Traceback" not in out and "ambiguous option" not in out
    assert "rank 0 of 2: steps 0..2 done" in out and "rank 1 of 2: steps 0..2 done" in out
    assert out.count("sources: mimic 21 rows, ms-cxr 16 rows") == 1  # the summary: rank 0 only
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["step-0000002.pt"]
    assert [int(r["step"]) for r in read_metrics(run)] == [1, 2]
    assert json.loads((run / "config.json").read_text())["tiny"] is True
    ckpt = load_checkpoint(run / "checkpoints" / "step-0000002.pt")
    straight = load_checkpoint(lofi_tiny_run.run / "checkpoints" / "step-0000002.pt")  # one process, same batches
    assert ckpt["model"].keys() == straight["model"].keys() and ckpt["scheduler"]["last_epoch"] == 2
    # Step 1 starts from the same weights on the same global batch: the sigmoid loss, over the embeddings gathered
    # from both ranks, is the one-process value (the captioning losses are per-rank token means, not comparable).
    assert read_metrics(run)[0]["sigmoid"] == pytest.approx(read_metrics(lofi_tiny_run.run)[0]["sigmoid"], abs=1e-5)
    # the logged losses are averaged over the ranks (all-reduce): the last one is the mean of the ranks' own
    local = [float(re.search(rf"rank {rank} of 2: steps 0..2 done, last local loss (\S+)", out)[1]) for rank in (0, 1)]
    assert local[0] != local[1] and read_metrics(run)[-1]["loss"] == pytest.approx(sum(local) / 2, rel=1e-6)


def test_set_overrides_the_recipe_and_the_run_saves_them(lofi_shards: Path, tmp_path: Path) -> None:
    """`--set` trains with the replaced values (the learning rate the optimizer used) and config.json keeps the
    resolved recipe and the overrides; a resumed run refuses --set."""
    run = tmp_path / "run"
    args = ["train", "lofi", "--tiny", "--data", str(lofi_shards), "--run", str(run), "--max-steps", "1",
            "--quiet", "--device", "cpu"]
    result = CliRunner().invoke(main, [*args, "--set", "optim.lr=1e-4", "--set", "train.batch_size=4"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    config = json.loads((run / "config.json").read_text())
    assert config["overrides"] == {"optim.lr": 1e-4, "train.batch_size": 4}
    assert config["recipe"]["optim"]["lr"] == 1e-4 and config["recipe"]["train"]["batch_size"] == 4
    assert config["recipe"]["optim"]["weight_decay"] == load_lofi_recipe("lofi-tiny")["optim"]["weight_decay"]
    assert float(read_metrics(run)[0]["lr"]) == pytest.approx(1e-4)  # no warm-up in lofi-tiny: step 1 at the peak
    resumed = CliRunner().invoke(main, [*args, "--resume", "--set", "optim.lr=1e-3"])
    assert resumed.exit_code == 2
    assert resumed.output.strip() == ("error: --set changes a recipe, which a resumed run keeps: drop --set, or "
                                      "start a new --run")
