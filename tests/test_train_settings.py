"""`train lofi|ldm --set KEY=VALUE`: recipe values from the command line, checked against the recipe's keys and
types (one `error:` line, exit 2), on the real bundled recipes."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from cxrdata.cli import main
from cxrdata.errors import CxrdataError
from cxrdata.models.ldm_recipe import load_ldm_recipe, load_ldm_recipe_with
from cxrdata.train.lofi_recipe import load_lofi_recipe, load_lofi_recipe_with


def test_settings_replace_values_parsed_as_yaml() -> None:
    recipe, applied = load_lofi_recipe_with("lofi-tiny", [
        "optim.lr=1e-4", "train.batch_size=32", "optim.grad_clip=null", "model.gradient_checkpointing=true",
        "targets.report_prompt=Describe: yes", "optim.betas=[0.9, 0.95]", "tiny.vocab_size=500", "optim.eps=1"])
    assert applied == {"optim.lr": 1e-4, "train.batch_size": 32, "optim.grad_clip": None,
                       "model.gradient_checkpointing": True, "targets.report_prompt": "Describe: yes",
                       "optim.betas": [0.9, 0.95], "tiny.vocab_size": 500, "optim.eps": 1.0}
    assert recipe["optim"]["lr"] == 1e-4 and isinstance(recipe["optim"]["lr"], float)
    assert recipe["train"]["batch_size"] == 32 and recipe["optim"]["grad_clip"] is None
    assert recipe["targets"]["report_prompt"] == "Describe: yes" and recipe["tiny"]["vocab_size"] == 500
    untouched = load_lofi_recipe("lofi-tiny")
    assert {k: v for k, v in recipe["optim"].items() if k not in ("lr", "grad_clip", "betas", "eps")} == {
        k: v for k, v in untouched["optim"].items() if k not in ("lr", "grad_clip", "betas", "eps")}
    cfg, applied = load_ldm_recipe_with("ldm-prompt-tuning-tiny", ["train.lr=2e-3", "data.split=test"])
    assert applied == {"train.lr": 2e-3, "data.split": "test"}
    assert cfg["train"]["lr"] == 2e-3 and cfg["data"]["split"] == "test"
    assert load_ldm_recipe("ldm-prompt-tuning-tiny")["train"]["lr"] == 1e-2


@pytest.mark.parametrize(("setting", "message"), [
    ("data.batch_size=32", "--set data.batch_size: recipe {path} has no key 'data.batch_size' (keys there: "
                           "num_workers, persistent_workers, prefetch_factor, sources, split)"),
    ("optim.lr=fast", "--set optim.lr=fast: 'optim.lr' must be float, got 'fast'"),
    ("train.batch_size=2.5", "--set train.batch_size=2.5: 'train.batch_size' must be int, got 2.5"),
    ("train.batch_size=true", "--set train.batch_size=true: 'train.batch_size' must be int, got True"),
    ("optim=1", "--set optim: 'optim' is a section of recipe {path}; set one of its keys"),
    ("optim.lr", "--set 'optim.lr': write it KEY=VALUE, e.g. --set optim.lr=1e-4"),
    ("train.precision=fp8", "recipe {path} with --set train.precision: 'train.precision' must be bf16, fp16 or fp32"),
])
def test_unknown_keys_and_wrong_types_are_one_clear_error(setting: str, message: str) -> None:
    from cxrdata.recipe import recipes_dir

    with pytest.raises(CxrdataError) as caught:
        load_lofi_recipe_with("lofi-tiny", [setting])
    assert str(caught.value) == message.format(path=recipes_dir() / "lofi-tiny.yaml")


def test_the_command_line_says_one_error_line_and_exits_2(tmp_path) -> None:
    for command, setting in (("lofi", "data.batch_size=32"), ("ldm", "train.lr=fast")):
        result = CliRunner().invoke(main, ["train", command, "--tiny", "--data", str(tmp_path), "--run",
                                           str(tmp_path / "run"), "--device", "cpu", "--set", setting])
        assert result.exit_code == 2, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: --set {setting.split('=')[0]}"), result.output
        assert not (tmp_path / "run").exists()
