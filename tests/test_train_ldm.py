"""`train ldm` / `heatmaps ldm` on the tiny configuration: random-weight MONAI networks saved in the bundle's
old checkpoint format and a tiny CLIP saved as a transformers folder, so the real loading code runs."""

from __future__ import annotations

import io
import itertools
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("monai")
pytest.importorskip("transformers")

from click.testing import CliRunner  # noqa: E402
from PIL import Image  # noqa: E402

from cxrdata.cli import main  # noqa: E402
from cxrdata.errors import CxrdataError  # noqa: E402
from cxrdata.io.schema import load_schema  # noqa: E402
from cxrdata.io.writer import ShardWriter  # noqa: E402
from cxrdata.models import checkpoints  # noqa: E402
from cxrdata.models.ldm_assets import write_random_assets  # noqa: E402
from cxrdata.models.ldm_attention import AttentionRecorder, cross_attention_blocks  # noqa: E402
from cxrdata.models.ldm_codebook import (  # noqa: E402
    LOCATION,
    PATHOLOGY,
    SPECIAL,
    PromptEncoder,
    build_token_table,
    install_codebook,
    load_embeddings,
    split_prompt,
)
from cxrdata.models.ldm_heatmaps import gaussian_filter, otsu_threshold  # noqa: E402
from cxrdata.models.ldm_model import FrozenLDM, build_unet, load_clip  # noqa: E402
from cxrdata.models.ldm_recipe import load_ldm_recipe  # noqa: E402
from cxrdata.train import common  # noqa: E402
from cxrdata.train.ldm import jitter_prior, sample_positions, train_ldm  # noqa: E402
from cxrdata.train.ldm_losses import (  # noqa: E402
    crop_box,
    diversity_loss,
    localisation_loss,
    localisation_target,
    prompt_gaussian,
)
from cxrdata.train.ldm_sampling import LatentCache  # noqa: E402

TINY = "ldm-prompt-tuning-tiny"
ROWS = [  # (prompt, locations, pathology, gaussians per location on the 512 grid)
    ("left lower pneumonia", ["left lower"], "Pneumonia", [[[360.0, 380.0, 40.0, 50.0]]]),
    ("bilateral pleural <and> cardiomegaly pleural effusion", ["bilateral pleural", "cardiomegaly"],
     "Pleural Effusion", [[[140.0, 400.0, 30.0, 30.0], [370.0, 400.0, 30.0, 30.0]], [[260.0, 300.0, 60.0, 50.0]]]),
    ("right apical pneumothorax", ["right apical"], "Pneumothorax", [[[150.0, 90.0, 40.0, 30.0]]]),
]


def _image_bytes(seed: int, width: int = 160, height: int = 128) -> bytes:
    arr = (np.random.default_rng(seed).random((height, width)) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _row(schema_name: str, **values: Any) -> dict[str, Any]:
    """A schema-complete record: empty defaults per type, then ``values``."""
    row: dict[str, Any] = {}
    for col in load_schema(schema_name).columns:
        kind = col.feature.get("_type")
        dtype = col.feature.get("dtype", "")
        row[col.name] = [] if kind == "List" else ("" if dtype == "string" else 0) if kind == "Value" else None
    row.update(values)
    return row


def write_ldm_prompts(out: Path, rows: list[tuple], split: str = "train") -> Path:
    records = []
    for i, (prompt, locs, pathology, gauss) in enumerate(rows):
        records.append(_row("ldm-prompts", id=f"d{i}", dicom_id=f"d{i}", split=split, pathology=pathology,
                            prompt=prompt, locations=locs, gaussians=gauss, lut_grid=512,
                            image={"bytes": _image_bytes(i), "path": None}, image_width=160, image_height=128,
                            original_width=160, original_height=128, extractor="rules@1"))
    with ShardWriter(out / "data" / "ldm-prompts" / f"{split}-00000-of-00001.parquet",
                     load_schema("ldm-prompts")) as writer:
        writer.write(records)
    return out


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny networks run fastest on one thread (and do not fight the other pytest worker for the cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    cfg = load_ldm_recipe(TINY)
    return write_random_assets(tmp_path_factory.mktemp("ldm-assets"), cfg["model"], cfg["tiny"]["clip"])


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_ldm_prompts(tmp_path_factory.mktemp("ldm-shards"), ROWS[:2])


@pytest.fixture(scope="module")
def tiny_recipe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("recipe") / "fast.yaml"
    path.write_text(f"base: {TINY}\ntrain:\n  steps_per_sample: 2\n  timestep_batch: 2\n")
    return path


# --- recipes ------------------------------------------------------------------------------------------------------


def test_recipes_hold_the_bundle_and_paper_settings():
    full, tiny = load_ldm_recipe(), load_ldm_recipe(TINY)
    assert full["model"]["unet"]["channels"] == [256, 512, 768]
    assert full["model"]["unet"]["num_head_channels"] == [0, 512, 768]
    assert full["model"]["unet"]["cross_attention_dim"] == 1024
    assert full["model"]["autoencoder"]["channels"] == [64, 128, 128, 128]
    assert full["model"]["scheduler"]["prediction_type"] == "v_prediction"
    assert full["attention"] == {"layers": [4, 5, 6, 7], "steps": [30, 60], "trajectory": "inversion",
                                 "early_exit": True}
    # heatmaps: the `attn2` indices of the published heatmap code (vios-s/ldm-phrase-grounding, sampler.py)
    assert (full["heatmap"]["layers"], full["heatmap"]["steps"]) == ([3, 4, 6, 7], [30, 60])
    assert full["loss"]["prior_scale"] == "peak" and "tiny" not in full and tiny["tiny"]["clip"]["hidden_size"] == 32
    assert (full["loss"]["alpha"], full["loss"]["epsilon"], full["train"]["lr"]) == (0.1, 1e-5, 1e-4)
    assert tiny["model"]["unet"]["channels"] == [32, 64, 64] and tiny["model"]["unet"]["cross_attention_dim"] == 32
    assert tiny["model"]["scheduler"] == full["model"]["scheduler"]


def test_recipe_typos_and_bad_values_are_errors(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"base: {TINY}\ntrain:\n  learning_rate: 0.1\n")
    with pytest.raises(CxrdataError, match=r"unknown key 'train\.learning_rate'"):
        load_ldm_recipe(bad)
    bad.write_text(f"base: {TINY}\nattention:\n  trajectory: ddpm\n")
    with pytest.raises(CxrdataError, match=r"attention\.trajectory must be one of"):
        load_ldm_recipe(bad)
    bad.write_text(f"base: {TINY}\nattention:\n  steps: [60, 30]\n")
    with pytest.raises(CxrdataError, match=r"attention\.steps"):
        load_ldm_recipe(bad)


# --- codebook -----------------------------------------------------------------------------------------------------


def test_prompts_split_into_location_pathology_and_special_words():
    assert split_prompt("cardiomegaly cardiomegaly") == [("cardiomegaly", LOCATION), ("cardiomegaly", PATHOLOGY)]
    assert split_prompt("left pleural pleural effusion") == [
        ("left", LOCATION), ("pleural", LOCATION), ("pleural", PATHOLOGY), ("effusion", PATHOLOGY)]
    assert split_prompt("left lower <and> right upper pneumonia") == [
        ("left", LOCATION), ("lower", LOCATION), ("<and>", SPECIAL), ("right", LOCATION), ("upper", LOCATION),
        ("pneumonia", PATHOLOGY)]
    assert split_prompt("right nodule") == [("right", LOCATION), ("nodule", "other")]


def test_codebook_rows_roles_and_only_location_rows_learn(assets):
    tokenizer, text = load_clip(assets[1])
    vocab = text.config.vocab_size
    table = build_token_table(tokenizer, vocab)
    shared = build_token_table(tokenizer, vocab, "shared")
    roles = [r.role for r in table.rows]
    assert roles[:4] == [SPECIAL] * 4 and set(roles) == {SPECIAL, LOCATION, PATHOLOGY}
    # "pleural" and "cardiomegaly" are location and pathology words: one row per role, or one shared row.
    assert len(table.rows) > len(shared.rows)
    assert table.word_rows[(LOCATION, "pleural")] != table.word_rows[(PATHOLOGY, "pleural")]
    assert shared.word_rows[(LOCATION, "pleural")] == shared.word_rows[(PATHOLOGY, "pleural")]

    encoder = PromptEncoder(table, tokenizer, 77)
    encoded = encoder.encode("left lower <and> right nodule pneumonia")
    plain = tokenizer("left lower and right nodule pneumonia", padding="max_length", max_length=77).input_ids
    # Before tuning, the codebook text context equals CLIP's own for the same CLIP tokens.
    ids = torch.tensor([encoded.ids])
    before = text(input_ids=torch.tensor([plain])).last_hidden_state
    text.requires_grad_(False)
    codebook = install_codebook(text, table)
    after = text(input_ids=ids).last_hidden_state
    assert torch.allclose(before, after, atol=1e-6)
    assert encoded.content[0] is False and encoded.content[3] is False  # <BoS>, <and>
    assert sum(encoded.content) == len(tokenizer("left lower right nodule pneumonia",
                                                 add_special_tokens=False).input_ids)

    after.pow(2).sum().backward()
    trainable = [n for n, p in text.named_parameters() if p.requires_grad]
    assert trainable == ["text_model.embeddings.token_embedding.codebook.trainable"]
    grad = codebook.trainable.grad
    used = {r for (role, w), rows in table.word_rows.items() if role == LOCATION
            and w in ("left", "lower", "right") for r in rows}
    rows = [table.trainable_rows.index(r) for r in used]
    assert grad[rows].abs().sum() > 0
    assert grad[[i for i in range(len(grad)) if i not in rows]].abs().sum() == 0


# --- attention and losses -----------------------------------------------------------------------------------------


def test_hooks_recompute_monai_attention_with_gradients_and_early_exit():
    cfg = load_ldm_recipe(TINY)
    torch.manual_seed(0)
    unet = build_unet(cfg["model"]["unet"]).eval()
    blocks = cross_attention_blocks(unet)
    assert len(blocks) == 11
    for _, block in blocks:
        block.save_attn = True
    x, t = torch.randn(2, 3, 16, 16), torch.tensor([300, 310])
    context = torch.randn(2, 77, 32, requires_grad=True)
    recorder = AttentionRecorder(unet, [4, 5, 6, 7])
    maps = recorder.run(unet, x, timesteps=t, context=context)
    for i in (4, 5, 6, 7):
        assert maps[i].shape == (2, 16, 77)  # 4 x 4 maps at 128 px input
        assert torch.allclose(maps[i], blocks[i][1].att_mat.mean(dim=1), atol=1e-6)
    sum(m[..., 1:4].sum() for m in maps.values()).backward()
    assert context.grad is not None and context.grad.abs().sum() > 0
    recorder.remove()
    early = AttentionRecorder(unet, [4, 5, 6, 7], stop_after_last=True)
    assert all(torch.allclose(early.run(unet, x, timesteps=t, context=context)[i], maps[i]) for i in maps)
    with pytest.raises(CxrdataError, match=r"11 cross-attention blocks"):
        AttentionRecorder(unet, [11])


def test_losses_follow_the_paper():
    content = torch.tensor([[False, True, True, False]])
    same = torch.rand(1, 16, 4).expand(1, 16, 4).clone()
    same[..., 2] = same[..., 1]
    assert torch.allclose(diversity_loss(same, content), torch.ones(1))
    disjoint = torch.zeros(1, 16, 4)
    disjoint[0, :8, 1], disjoint[0, 8:, 2] = 1.0, 1.0
    assert torch.allclose(diversity_loss(disjoint, content), torch.zeros(1))
    assert diversity_loss(disjoint, torch.tensor([[False, True, False, False]])).item() == 0.0

    g = torch.from_numpy(prompt_gaussian([[[256.0, 256.0, 60.0, 60.0]]], 512, (0, 0, 1, 1), 4, 4).reshape(1, -1))
    assert localisation_loss(g.clone(), g, 1e-5, 0.1).item() == pytest.approx(0.0, abs=1e-6)
    a = torch.rand(1, 16, requires_grad=True)
    loss = localisation_loss(a, g, 1e-5, 0.1)
    loss.backward()
    ref = a.detach().clone().requires_grad_(True)
    target = localisation_target(a.detach(), g, 1e-5, 0.1)
    (1 - torch.nn.functional.cosine_similarity(ref, target, dim=1)).backward()
    assert torch.allclose(a.grad, ref.grad)  # the target is a stop-gradient


def test_gaussian_follows_the_centre_crop():
    box = crop_box(200, 100, "center_crop")
    assert box == (0.25, 0.0, 0.75, 1.0)
    # A Gaussian at the image's centre stays centred; one at x = 0.75 lands on the crop's right edge.
    centred = prompt_gaussian([[[256.0, 256.0, 20.0, 20.0]]], 512, box, 8, 8)
    assert np.unravel_index(centred.argmax(), centred.shape) in {(3, 3), (3, 4), (4, 3), (4, 4)}
    edge = prompt_gaussian([[[384.0, 256.0, 20.0, 20.0]]], 512, box, 8, 8)
    assert edge[:, -1].max() == edge.max()
    mixture = prompt_gaussian([[[100.0, 256.0, 20.0, 20.0], [412.0, 256.0, 20.0, 20.0]]], 512, (0, 0, 1, 1), 8, 8)
    assert mixture.max() == pytest.approx(1.0) and mixture[4, 1] == pytest.approx(mixture[4, 6], rel=1e-4)


def test_jitter_moves_mu_and_sigma_within_five_percent_and_keeps_sigma_positive():
    base = np.array([[100.0, 200.0, 10.0, 40.0]] * 500)
    moved = jitter_prior(base, np.random.default_rng(0), 512, 0.05, 0.5)
    assert np.abs(moved - base).max() <= 0.05 * 512 + 1e-9
    assert np.abs(moved[:, :2] - base[:, :2]).max() > 20  # the full ±25.6 px range is used
    assert (moved[:, 2] >= 5.0).all() and (moved[:, 2] == 5.0).any()  # the floor: half the LUT's sigma
    assert np.array_equal(moved, jitter_prior(base, np.random.default_rng(0), 512, 0.05, 0.5))
    assert np.array_equal(jitter_prior(base, np.random.default_rng(0), 512, 0.0, 0.5), base)


def test_the_images_a_step_lacks_are_computed_in_one_batch_and_cached():
    calls: list[list[str]] = []

    def compute(keys: list[str]) -> dict[str, str]:
        calls.append(keys)
        return {k: k.upper() for k in [*keys, "z"]}  # "z": an image of a later step, computed in the same batch

    cache = LatentCache(4)
    assert cache.get_many(["a", "b", "a"], compute) == ["A", "B", "A"]
    assert cache.get_many(["b", "z", "c", "d"], compute) == ["B", "Z", "C", "D"]
    assert calls == [["a", "b"], ["c", "d"]], "one call per step, for the keys not held, each once"
    assert list(cache.items) == ["b", "z", "c", "d"], "least recently used first out"
    uncached = LatentCache(0)
    assert uncached.get_many(["x"], compute) == ["X"] and not uncached.items


def test_batched_ddim_inversion_is_the_one_at_a_time_inversion(assets):
    cfg = load_ldm_recipe(TINY)
    frozen = FrozenLDM.load(cfg["model"], *assets, torch.device("cpu"))
    generator = torch.Generator().manual_seed(0)
    images = torch.rand((3, 1, cfg["data"]["image_size"], cfg["data"]["image_size"]), generator=generator)
    latents = frozen.encode_images(images)
    uncond = frozen.encode_text(torch.zeros((1, 77), dtype=torch.long))
    keep = [0, 2, 4]
    batched = frozen.invert(latents, uncond, keep)
    one_by_one = torch.cat([frozen.invert(latents[j : j + 1], uncond, keep) for j in range(3)])
    assert batched.shape == (3, len(keep), *latents.shape[1:])
    torch.testing.assert_close(batched, one_by_one, rtol=1e-4, atol=1e-5)


def test_every_row_is_seen_once_per_epoch_in_a_seeded_order():
    first = [sample_positions(s, 2, 0, 1, 10, seed=3) for s in range(5)]
    second = [sample_positions(s, 2, 0, 1, 10, seed=3) for s in range(5, 10)]
    assert sorted(i for b in first for i in b) == list(range(10)) == sorted(i for b in second for i in b)
    assert first != second and first == [sample_positions(s, 2, 0, 1, 10, seed=3) for s in range(5)]
    ranks = [sample_positions(0, 2, r, 2, 10, seed=3) for r in (0, 1)]
    assert ranks[0] + ranks[1] == sample_positions(0, 4, 0, 1, 10, seed=3)


def test_heatmap_smoothing_and_otsu():
    delta = np.zeros((21, 21), dtype=np.float32)
    delta[10, 10] = 1.0
    smooth = gaussian_filter(delta, 2.5)
    assert smooth.sum() == pytest.approx(1.0, abs=1e-5) and smooth.argmax() == 10 * 21 + 10
    assert np.allclose(smooth, smooth.T) and np.allclose(smooth, smooth[::-1])
    edge = np.zeros((8, 8), dtype=np.float32)
    edge[0, 0] = 1.0  # symmetric ("reflect") borders keep the mass inside
    assert gaussian_filter(edge, 1.0).sum() == pytest.approx(1.0, abs=1e-5)
    values = np.concatenate([np.full(100, 0.1), np.full(50, 0.8)]).astype(np.float32)
    assert 0.1 < otsu_threshold(values) < 0.8


# --- loading errors -----------------------------------------------------------------------------------------------


def test_missing_or_mismatched_checkpoints_are_clear_errors(assets, tmp_path: Path):
    cfg = load_ldm_recipe(TINY)
    with pytest.raises(CxrdataError, match=r"models/autoencoder\.pth"):
        FrozenLDM.load(cfg["model"], tmp_path, assets[1], torch.device("cpu"))
    full = load_ldm_recipe()["model"]
    with pytest.raises(CxrdataError, match=r"does not fit the recipe's autoencoder"):
        FrozenLDM.load(full, assets[0], assets[1], torch.device("cpu"))
    with pytest.raises(CxrdataError, match=r"--clip .*missing .*config\.json"):
        FrozenLDM.load(cfg["model"], assets[0], tmp_path, torch.device("cpu"))


def test_a_shard_without_the_needed_columns_is_refused(assets, tmp_path: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / "out" / "data" / "ldm-prompts"
    folder.mkdir(parents=True)
    pq.write_table(pa.table({"id": ["a"], "prompt": ["left pneumonia"]}), folder / "train-00000-of-00001.parquet")
    with pytest.raises(CxrdataError, match=r"lacks column.*image.*gaussians.*lut_grid"):
        train_ldm([tmp_path / "out"], tmp_path / "run", ldm=assets[0], clip=assets[1], recipe=TINY, max_steps=1,
                  log=lambda _m: None)
    no_lut = write_ldm_prompts(tmp_path / "nolut", [(ROWS[0][0], ROWS[0][1], ROWS[0][2], None)])
    with pytest.raises(CxrdataError, match=r"built without --lut"):
        train_ldm([no_lut], tmp_path / "run2", ldm=assets[0], clip=assets[1], recipe=TINY, max_steps=1,
                  log=lambda _m: None)
    # ... unless --lut gives each row's locations their Gaussians.
    from cxrdata.anatomy.lut import build_lut, imagenome_regions, write_lut

    write_lut(build_lut([(name, (0.2, 0.3, 0.5, 0.6)) for name in imagenome_regions()]), tmp_path / "lut.json")
    train_ldm([no_lut], tmp_path / "run3", ldm=assets[0], clip=assets[1], recipe=TINY, max_steps=1,
              lut=tmp_path / "lut.json", log=lambda _m: None)
    assert [int(r["step"]) for r in common.read_metrics(tmp_path / "run3")] == [1]


# --- training -----------------------------------------------------------------------------------------------------


def test_loss_goes_down_on_a_fixed_batch(assets, tmp_path: Path):
    recipe = tmp_path / "fixed.yaml"
    recipe.write_text(f"base: {TINY}\nloss:\n  jitter: 0.0\ntrain:\n  lr: 0.05\n  checkpoint_every: 100\n")
    out = write_ldm_prompts(tmp_path / "one", ROWS[:1])
    train_ldm([out], tmp_path / "run", ldm=assets[0], clip=assets[1], recipe=recipe, max_steps=6,
              log=lambda _m: None)
    metrics = common.read_metrics(tmp_path / "run")
    losses, loc = [row["loss"] for row in metrics], [row["loss_loc"] for row in metrics]
    assert len(losses) == 6
    assert all(b < a for a, b in itertools.pairwise(losses)), losses  # same batch, no jitter
    assert losses[-1] < losses[0] - 0.01 and loc[-1] < loc[0], losses


@pytest.mark.parametrize(("inversion_batch", "batches"), [(1, [1, 1, 1]), (3, [3]), (2, [2, 1])])
def test_a_batch_of_one_inverts_the_next_steps_images_together(assets, tmp_path: Path, monkeypatch,
                                                               inversion_batch, batches):
    sizes: list[int] = []
    invert = FrozenLDM.invert

    def counted(self, latents, uncond, keep):  # the real inversion, its batch sizes recorded
        sizes.append(len(latents))
        return invert(self, latents, uncond, keep)

    monkeypatch.setattr(FrozenLDM, "invert", counted)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"base: {TINY}\ntrain:\n  batch_size: 1\n  steps_per_sample: 1\n  timestep_batch: 1\n"
                      f"  inversion_batch: {inversion_batch}\n  checkpoint_every: 100\n")
    out = write_ldm_prompts(tmp_path / "three", ROWS[:3])
    train_ldm([out], tmp_path / "run", ldm=assets[0], clip=assets[1], recipe=recipe, max_steps=3,
              log=lambda _m: None)
    assert sizes == batches, "3 steps of 1 image each: every image inverted once, in batches of inversion_batch"


def _trainable(run: Path) -> tuple[torch.Tensor, dict]:
    ckpt = checkpoints.load_checkpoint(checkpoints.latest_checkpoint(run))
    return ckpt["model"]["trainable"], ckpt["optimizer"]["state"][0]


def test_resume_continues_exactly_and_heatmaps_feed_eval_grounding(assets, shards, tiny_recipe, tmp_path: Path):
    runner = CliRunner()
    base = ["train", "ldm", "--data", str(shards), "--ldm", str(assets[0]), "--clip", str(assets[1]),
            "--recipe", str(tiny_recipe), "--quiet"]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    for args in ([*base, "--run", str(straight), "--max-steps", "4"],
                 [*base, "--run", str(resumed), "--max-steps", "2"],
                 [*base, "--run", str(resumed), "--max-steps", "4", "--resume"]):
        result = runner.invoke(main, args, catch_exceptions=False)
        assert result.exit_code == 0, result.output
    (w_a, opt_a), (w_b, opt_b) = _trainable(straight), _trainable(resumed)
    assert torch.equal(w_a, w_b)
    assert torch.equal(opt_a["exp_avg"], opt_b["exp_avg"]) and torch.equal(opt_a["exp_avg_sq"], opt_b["exp_avg_sq"])
    metrics = common.read_metrics(resumed)
    assert [int(r["step"]) for r in metrics] == [1, 2, 3, 4]
    assert metrics[-1]["loss"] == common.read_metrics(straight)[-1]["loss"]
    assert (resumed / "tensorboard").is_dir()
    again = runner.invoke(main, [*base, "--run", str(resumed)])
    assert again.exit_code != 0 and "--resume" in again.output

    weight, table, meta = load_embeddings(straight / "embeddings.safetensors")
    assert weight.shape == (len(table.rows), 32) and meta["recipe_hash"]
    moved = (weight - load_embeddings(resumed / "embeddings.safetensors")[0]).abs().max()
    assert moved == 0

    # MS-CXR-loc-like rows (boxes + class) -> heatmaps -> eval grounding.
    test_out = tmp_path / "msloc"
    records = [_row("ms-cxr-loc", id=f"dcm{i}/{i + 1}", dicom_id=f"dcm{i}", split="test", pathology=p, prompt=prompt,
                    phrase=prompt, locations=locs, boxes=[[0.55, 0.5, 0.9, 0.9]], lut_grid=512,
                    image={"bytes": _image_bytes(10 + i), "path": None}, image_width=160, image_height=128,
                    original_width=160, original_height=128)
               for i, (prompt, locs, p, _) in enumerate(ROWS)]
    with ShardWriter(test_out / "data" / "ms-cxr-loc" / "test-00000-of-00001.parquet",
                     load_schema("ms-cxr-loc")) as writer:
        writer.write(records)
    heat = tmp_path / "heat"
    result = runner.invoke(main, ["heatmaps", "ldm", "--run", str(straight), "--data", str(test_out), "--out",
                                  str(heat)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    files = sorted(p.name for p in heat.glob("*.npy"))
    assert files == ["dcm0_1.npy", "dcm1_2.npy", "dcm2_3.npy"]
    arr = np.load(heat / "dcm0_1.npy")
    assert arr.dtype == np.float32 and arr.shape == (64, 64) and arr.min() == 0.0 and arr.max() == 1.0
    summary = json.loads((heat / "heatmaps.json").read_text())
    assert summary["written"] == 3 and summary["layers"] == [3, 4, 6, 7] and summary["skipped_no_image"] == []
    rerun = runner.invoke(main, ["heatmaps", "ldm", "--run", str(straight), "--data", str(test_out), "--out",
                                 str(heat)], catch_exceptions=False)
    assert "0 heatmaps" in rerun.output and "3 already there" in rerun.output
    frozen = tmp_path / "frozen"
    result = runner.invoke(main, ["heatmaps", "ldm", "--frozen", "--recipe", str(tiny_recipe), "--ldm", str(assets[0]),
                                  "--clip", str(assets[1]), "--data", str(test_out), "--out", str(frozen),
                                  "--limit", "2"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert len(list(frozen.glob("*.npy"))) == 2 and json.loads((frozen / "heatmaps.json").read_text())["frozen"]
    scored = runner.invoke(main, ["eval", "grounding", "--data", str(test_out), "--heatmaps", str(heat),
                                  "--resamples", "50", "--out", str(tmp_path / "g.csv")], catch_exceptions=False)
    assert scored.exit_code == 0, scored.output
    assert (tmp_path / "g.csv").is_file()


# --- tiny assets, damaged shards, several processes --------------------------------------------------------------


def test_tiny_needs_no_weight_folders_and_heatmaps_find_them(shards, tmp_path: Path):
    """`train ldm --tiny` writes random-weight assets in the real formats to RUN/weights/ (like `train lofi --tiny`);
    the run records them, so `heatmaps ldm --run RUN` needs no --ldm/--clip either."""
    runner = CliRunner()
    run = tmp_path / "run"
    args = ["train", "ldm", "--tiny", "--data", str(shards), "--out", str(run), "--device", "cpu", "--quiet"]
    result = runner.invoke(main, [*args, "--max-steps", "1"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    files = sorted(str(p.relative_to(run / "weights")) for p in (run / "weights").rglob("*") if p.is_file())
    assert {"bundle/models/autoencoder.pth", "bundle/models/diffusion_model.pth", "clip/text_encoder/config.json",
            "clip/tokenizer/vocab.json", "clip/tokenizer/merges.txt"} <= set(files)
    inputs = json.loads((run / "run.json").read_text())["inputs"]
    assert inputs["ldm"] == str((run / "weights" / "bundle").resolve()) and inputs["tiny_assets"] is True
    before = (run / "weights" / "bundle" / "models" / "diffusion_model.pth").stat().st_mtime_ns
    result = runner.invoke(main, [*args, "--max-steps", "2", "--resume"])
    assert result.exit_code == 0, result.output
    assert (run / "weights" / "bundle" / "models" / "diffusion_model.pth").stat().st_mtime_ns == before  # reused
    assert [int(r["step"]) for r in common.read_metrics(run)] == [1, 2]
    heat = tmp_path / "heat"
    result = runner.invoke(main, ["heatmaps", "ldm", "--run", str(run), "--data", str(shards), "--out", str(heat)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in heat.glob("*.npy")) == ["d0.npy", "d1.npy"]
    half = runner.invoke(main, ["train", "ldm", "--data", str(shards), "--out", str(tmp_path / "r2"),
                                "--ldm", str(run / "weights" / "bundle")])
    assert half.exit_code == 2 and "needs --ldm (the MONAI bundle folder) and --clip" in half.output


def _null_images(out: Path, ids: set[str]) -> None:
    """Rewrite the ldm-prompts shard with the image cell of ``ids`` set to null."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    [path] = (out / "data" / "ldm-prompts").glob("train-*.parquet")
    table = pq.read_table(path)
    rows = table.to_pylist()
    for row in rows:
        if row["id"] in ids:
            row["image"] = None
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), path)


def test_damaged_shards_are_one_line_or_counted_skips(assets, tmp_path: Path):
    """Zero rows / a truncated shard / every image null: one error line (exit 2, no traceback). Some images null:
    those rows are skipped and counted (run.json, log line, heatmaps.json), the others train."""
    import pyarrow.parquet as pq

    def cli(data: Path, run: str, *extra: str) -> Any:
        return CliRunner().invoke(main, ["train", "ldm", "--data", str(data), "--out", str(tmp_path / run), "--ldm",
                                         str(assets[0]), "--clip", str(assets[1]), "--recipe", TINY, "--device", "cpu",
                                         "--max-steps", "1", *extra])

    zero = write_ldm_prompts(tmp_path / "zero", ROWS[:1])
    [path] = (zero / "data" / "ldm-prompts").glob("*.parquet")
    pq.write_table(pq.read_table(path).slice(0, 0), path)
    truncated = write_ldm_prompts(tmp_path / "truncated", ROWS[:2])
    [path] = (truncated / "data" / "ldm-prompts").glob("*.parquet")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    no_images = write_ldm_prompts(tmp_path / "no-images", ROWS[:2])
    _null_images(no_images, {"d0", "d1"})
    for data, message in ((zero, "config 'ldm-prompts' split 'train' has no rows"),
                          (truncated, f"shard {path} is not a readable Parquet file"),
                          (no_images, "config 'ldm-prompts' split 'train' has no rows with an image (2 rows, every "
                                      "image cell null or empty)")):
        result = cli(data, f"run-{data.name}")
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
        [line] = [x for x in result.output.splitlines() if x.startswith("error:")]
        assert line.startswith(f"error: {message}"), result.output
        assert not (tmp_path / f"run-{data.name}").exists()

    some = write_ldm_prompts(tmp_path / "some", ROWS)
    _null_images(some, {"d1"})
    result = cli(some, "some-run")
    assert result.exit_code == 0, result.output
    assert "train ldm: 2 rows of ldm-prompts/train (1 without an image skipped)" in result.output
    inputs = json.loads((tmp_path / "some-run" / "run.json").read_text())["inputs"]
    assert (inputs["rows"], inputs["skipped_no_image"]) == (2, 1)
    heat = tmp_path / "heat"
    result = CliRunner().invoke(main, ["heatmaps", "ldm", "--run", str(tmp_path / "some-run"), "--data", str(some),
                                       "--out", str(heat)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in heat.glob("*.npy")) == ["d0.npy", "d2.npy"]
    assert json.loads((heat / "heatmaps.json").read_text())["skipped_no_image"] == ["d1"]


@pytest.mark.slow
def test_the_help_examples_torchrun_runs_two_cpu_processes(tmp_path: Path):
    """`train ldm --help`'s torchrun example, on the CPU with 2 gloo processes and --tiny: both ranks run every step,
    rank 0 alone writes the run, and the result equals one process with the global batch (2 x batch 1 = batch 2)."""
    from lofi_testing import run_torchrun, torchrun_example

    shards = write_ldm_prompts(tmp_path / "shards", ROWS)
    run = tmp_path / "ddp"
    argv = torchrun_example("train ldm", {"N": "2", "OUT": str(shards), "RUN": str(run)})
    assert "--run" not in argv and "--standalone" in argv and argv[-4:] == ["--ldm", "BUNDLE", "--clip", "CLIP"]
    done = run_torchrun([*argv[:-4], "--tiny", "--max-steps", "2", "--device", "cpu"], tmp_path)  # --tiny: own assets
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "Traceback" not in out and "ambiguous option" not in out
    for rank in (0, 1):
        assert f"rank {rank} of 2, steps 0..2" in out and f"rank {rank} of 2: steps 0..2 done" in out
    assert out.count("tuned embeddings:") == 1 and out.count("wrote ") == 1  # rank 0 writes, once
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["step-0000002.pt"]
    assert [int(r["step"]) for r in common.read_metrics(run)] == [1, 2]

    single = tmp_path / "single"
    recipe = tmp_path / "batch2.yaml"
    recipe.write_text(f"base: {TINY}\ntrain:\n  batch_size: 2\n")
    train_ldm([shards], single, ldm=run / "weights" / "bundle", clip=run / "weights" / "clip", recipe=recipe,
              max_steps=2, device="cpu", log=lambda _m: None)
    (w_ddp, opt_ddp), (w_one, opt_one) = _trainable(run), _trainable(single)
    torch.testing.assert_close(w_ddp, w_one, rtol=0, atol=1e-6)
    torch.testing.assert_close(opt_ddp["exp_avg"], opt_one["exp_avg"], rtol=0, atol=1e-7)
    assert opt_one["exp_avg"].abs().max() > 0
    # the logged loss is the mean over the ranks (all-reduced): the one-process batch-2 loss, and the mean of the
    # two ranks' own last losses
    logged, one = common.read_metrics(run), common.read_metrics(single)
    assert [r["loss"] for r in logged] == pytest.approx([r["loss"] for r in one], rel=1e-5)
    local = [float(re.search(rf"rank {rank} of 2: steps 0..2 done, last local loss (\S+)", out)[1]) for rank in (0, 1)]
    assert local[0] != local[1] and logged[-1]["loss"] == pytest.approx(sum(local) / 2, rel=1e-6)


# --- what the LDM is fed: the ldm-prompts build stores the shortest side at 512 ---------------------------------


def test_ldm_prompts_store_the_shortest_side_and_the_vae_gets_512_original_pixels(mimic_sample, tmp_path: Path,
                                                                                    monkeypatch: pytest.MonkeyPatch):
    """The chest X-ray LDM was trained on crops whose shortest side is 512 (the bundle's preprocessing resizes the
    short side to 512, its training centre-crops 512 x 512): ldm-prompts stores that, and `train ldm` feeds the VAE
    that crop unresampled, so each side of it holds >= 512 original pixels."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from cxrdata.anatomy.lut import build_lut, imagenome_regions, write_lut
    from cxrdata.models.ldm_inputs import image_tensor, model_crop

    out = tmp_path / "ldm-out"
    result = CliRunner().invoke(main, ["build", "mimic", "--root", str(mimic_sample.root), "--recipe", "ldm-prompts",
                                       "--extractor", "rules", "--out", str(out), "--workers", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())["configs"]["ldm-prompts"]
    assert manifest["options"]["image_fit"] == "shortest" and manifest["options"]["image_size"] == 512
    assert any(stage.endswith(":fit=shortest") for stage in manifest["stages"])
    files = sorted((out / "data" / "ldm-prompts").glob("train-*.parquet"))
    table = pa.concat_tables([pq.read_table(f) for f in files])
    rows = table.to_pylist()
    large = []
    for row in rows:
        image = Image.open(io.BytesIO(row["image"]["bytes"]))
        assert image.size == (row["image_width"], row["image_height"])
        ow, oh = row["original_width"], row["original_height"]
        if min(ow, oh) <= 512:  # never enlarged
            assert image.size == (ow, oh)
            continue
        scale = 512 / min(ow, oh)
        assert (min(image.size), max(image.size)) == (512, round(max(ow, oh) * scale))
        crop = model_crop(image, "center_crop")
        assert crop.shape == (512, 512)
        assert min(ow, oh) / min(image.size) * crop.shape[0] >= 512  # original pixels per side of the crop
        assert torch.equal(image_tensor(image, 512, "center_crop")[0], torch.from_numpy(crop.astype(np.float32) / 255))
        large.append(row)
    assert len(large) >= 2, "the sample's full-size MIMIC images (2544 x 3056) are among the ldm-prompts rows"
    assert {(r["original_width"], r["original_height"]) for r in large} >= {(2544, 3056), (3056, 2544)}

    # `train ldm` at the real recipe's 512 px on those rows: what reaches the VAE is exactly that crop.
    shard = tmp_path / "large" / "data" / "ldm-prompts" / "train-00000-of-00001.parquet"
    shard.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(large, schema=table.schema), shard)
    write_lut(build_lut([(name, (0.2, 0.3, 0.5, 0.6)) for name in imagenome_regions()]), tmp_path / "lut.json")
    recipe = tmp_path / "at512.yaml"
    recipe.write_text(f"base: {TINY}\ndata:\n  image_size: {load_ldm_recipe()['data']['image_size']}\n"
                      "train:\n  steps_per_sample: 1\n  timestep_batch: 1\n")
    fed = []
    encode = FrozenLDM.encode_images

    def watched(self, images):  # records what the VAE gets, then encodes it as always
        fed.append(images.clone())
        return encode(self, images)

    monkeypatch.setattr(FrozenLDM, "encode_images", watched)
    train_ldm([tmp_path / "large"], tmp_path / "run", ldm=None, clip=None, tiny=True, recipe=recipe, lut=tmp_path /
              "lut.json", max_steps=1, device="cpu", log=lambda _m: None)
    [images] = fed
    assert images.shape == (1, 1, 512, 512)
    crops = {r["id"]: torch.from_numpy(model_crop(Image.open(io.BytesIO(r["image"]["bytes"])), "center_crop")
                                       .astype(np.float32) / 255) for r in large}
    assert any(torch.equal(images[0, 0], c) for c in crops.values())


def test_recipe_image_fit(tmp_path: Path):
    from cxrdata.recipe import load_build_recipe

    assert load_build_recipe("ldm-prompts").image["fit"] == "shortest"
    assert "fit" not in load_build_recipe("ms-cxr-loc").image  # the default: longest


def test_set_overrides_the_recipe_and_run_json_saves_them(shards, tmp_path: Path):
    run = tmp_path / "run"
    args = ["train", "ldm", "--tiny", "--data", str(shards), "--out", str(run), "--device", "cpu", "--quiet",
            "--max-steps", "1", "--set", "train.steps_per_sample=1", "--set", "train.timestep_batch=1",
            "--set", "train.lr=2e-3"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    doc = json.loads((run / "run.json").read_text())
    assert doc["overrides"] == {"train.steps_per_sample": 1, "train.timestep_batch": 1, "train.lr": 2e-3}
    assert doc["recipe"]["train"]["lr"] == 2e-3 and doc["recipe"]["train"]["steps_per_sample"] == 1
    tiny = load_ldm_recipe(TINY)
    assert doc["recipe"]["train"]["weight_decay"] == tiny["train"]["weight_decay"]
    state = checkpoints.load_checkpoint(checkpoints.latest_checkpoint(run))
    assert state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(2e-3)
