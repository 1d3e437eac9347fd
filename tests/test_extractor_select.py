"""Choosing the extractor (``--extractor auto|radgraph|rules``), the recipe files and the CLI's checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from cxrdata_testing import plan_of

from cxrdata.cli import main
from cxrdata.errors import CxrdataError
from cxrdata.extract.rules import RuleExtractor
from cxrdata.extract.select import make_extractor, select_extractor, uses_gpu
from cxrdata.recipe import build_recipe_names, load_build_recipe
from cxrdata.stage import Resources
from cxrdata.targets.locate_stage import ReportLocateStage


def fake_radgraph_cache(root: Path) -> Path:
    """The files RadGraphExtractor checks, with placeholder weights: enough to be chosen, never loaded."""
    from radgraph_tiny import RELATION_LABELS, XL_NER_LABELS, dygie_config

    model = root / "radgraph-xl"
    (model / "vocabulary").mkdir(parents=True)
    (model / "config.json").write_text(json.dumps(dygie_config(root / "_bert")))
    (model / "vocabulary" / "non_padded_namespaces.txt").write_text("*tags\n*labels\n")
    (model / "vocabulary" / "radgraph-xl__ner_labels.txt").write_text("\n" + "\n".join(XL_NER_LABELS) + "\n")
    (model / "vocabulary" / "radgraph-xl__relation_labels.txt").write_text("\n".join(RELATION_LABELS) + "\n")
    (model / "weights.th").write_bytes(b"not really weights")
    return root


def test_rules_when_asked() -> None:
    selection = select_extractor("rules")
    assert isinstance(selection.extractor, RuleExtractor)
    assert selection.label == "rules@2"
    assert isinstance(make_extractor("rules"), RuleExtractor)


def test_auto_falls_back_to_rules_without_weights(tmp_path: Path) -> None:
    selection = select_extractor("auto", tmp_path)
    assert selection.label == "rules@2"
    assert str(tmp_path) in selection.reason
    assert list(tmp_path.iterdir()) == []  # nothing created in the cache


def test_auto_picks_radgraph_when_its_files_are_present(tmp_path: Path) -> None:
    pytest.importorskip("radgraph")
    selection = select_extractor("auto", fake_radgraph_cache(tmp_path), device="cpu")
    assert selection.extractor.name == "radgraph-xl"
    assert selection.label.startswith("radgraph-xl@radgraph-0.1.18+")
    assert selection.extractor._runner is None  # chosen in the main process, loaded by the stage's setup()
    assert not uses_gpu(selection.extractor)


def test_auto_without_the_radgraph_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import cxrdata.extract.radgraph as radgraph

    def not_installed() -> str:
        raise CxrdataError("the RadGraph extractor needs the optional dependencies")

    monkeypatch.setattr(radgraph, "radgraph_version", not_installed)
    selection = select_extractor("auto", fake_radgraph_cache(tmp_path))
    assert selection.label == "rules@2" and "not installed" in selection.reason


def test_radgraph_without_weights_names_the_missing_files(tmp_path: Path) -> None:
    pytest.importorskip("radgraph")
    with pytest.raises(CxrdataError) as err:
        make_extractor("radgraph", tmp_path)
    assert "weights.th" in str(err.value) and "config.json" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(CxrdataError, match="unknown extractor"):
        make_extractor("spacy")


def test_stage_declares_its_resources() -> None:
    stage = ReportLocateStage(extractor=RuleExtractor())
    assert stage.resources == Resources(cpus=1.0, gpus=0.0, batch_size=64)
    assert stage.fingerprint().startswith("locate@3:rules@2:lut=none:")


def test_bundled_recipes() -> None:
    assert {"ldm-prompts", "ms-cxr-loc"} <= set(build_recipe_names())
    ldm = load_build_recipe("ldm-prompts")
    assert (ldm.datasets, ldm.output, ldm.source) == (("mimic",), "ldm-prompts",
                                                      {"views": ["PA", "AP"], "single_pathology": True})
    assert ldm.image == {"size": 512, "fit": "shortest", "format": "jpeg"}
    assert ldm.stages == (("locate", {"extractor": "auto", "sections": ["findings", "impression"],
                                      "fallback": ["last_paragraph"], "include_uncertain": False}),)
    loc = load_build_recipe("ms-cxr-loc")
    assert (loc.datasets, loc.output, loc.stages[0][0], loc.stages[0][1]["require_mention"]) == \
        (("ms-cxr",), "ms-cxr-loc", "locate-phrase", False)


@pytest.mark.parametrize(
    ("dataset", "text", "message"),
    [
        ("mimic", "datasets: [vindr]\noutput: ldm-prompts\n", "is for `cxrdata build` vindr, not `build mimic`"),
        ("mimic", "datasets: [mimic]\noutput: nope\n", "no output schema named 'nope'"),
        ("mimic", "datasets: [mimic]\noutput: mimic\nfilter: {}\n", "unknown key(s) filter"),
        ("mimic", "datasets: [mimic]\noutput: mimic\nimage: {size: big}\n", "'size' must be an integer"),
        ("mimic", "datasets: [mimic]\noutput: ldm-prompts\nstages: [{locate: {extractor: spacy}}]\n",
         "'extractor' must be one of auto, radgraph, rules"),
        ("ms-cxr", "datasets: [ms-cxr]\noutput: ms-cxr\nsource: {views: [PA]}\n", "unknown key(s) views"),
        ("mimic", "datasets: [mimic]\noutput: ldm-prompts\nstages: [{locate: {sections: [history]}}]\n",
         "'sections' and 'fallback' list report sections"),
        ("mimic", "datasets: [mimic]\noutput: mimic\nimage: {size: 512, fit: short}\n",
         "'fit' must be one of longest, shortest, got 'short'"),
        ("mimic", "datasets: [mimic]\noutput: mimic\nstages: [{translate: {}}]\n", "unknown stage 'translate'"),
    ],
)
def test_bad_recipes_are_refused_naming_the_key(tmp_path: Path, dataset: str, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(CxrdataError) as err:
        plan_of(dataset, recipe=path, root=tmp_path, mimic_root=tmp_path) if dataset == "ms-cxr" else \
            plan_of(dataset, recipe=path, root=tmp_path)
    assert message in str(err.value) and (str(path) in str(err.value) or "not `build" in str(err.value))


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def assert_one_line_error(result, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    line = result.output.strip()
    assert line.startswith("error:") and "Traceback" not in line and len(line.splitlines()) == 1, line
    for needle in needles:
        assert needle in line


def test_cli_radgraph_without_weights(mimic_sample, tmp_path: Path) -> None:
    pytest.importorskip("radgraph")
    result = invoke("build", "mimic", "--root", str(mimic_sample.root), "--recipe", "ldm-prompts",
                    "--extractor", "radgraph", "--radgraph-cache", str(tmp_path / "rg"), "--out", str(tmp_path / "o"))
    assert_one_line_error(result, "config.json", "weights.th", str(tmp_path / "rg" / "radgraph-xl"))
    assert not (tmp_path / "o").exists()


def test_cli_refuses_language_options_without_a_recipe(mimic_sample, tmp_path: Path) -> None:
    result = invoke("build", "mimic", "--root", str(mimic_sample.root), "--extractor", "rules",
                    "--lut", "x.json", "--out", str(tmp_path / "o"))
    assert_one_line_error(result, "--extractor, --lut apply only with a --recipe that has them (ldm-prompts)")


def test_cli_recipe_for_another_command(mimic_sample, tmp_path: Path) -> None:
    result = invoke("build", "mimic", "--root", str(mimic_sample.root), "--recipe", "ms-cxr-loc",
                    "--out", str(tmp_path / "o"))
    assert_one_line_error(result, "recipe ms-cxr-loc is for `cxrdata build` ms-cxr, not `build mimic`")
    result = invoke("build", "mimic", "--root", str(mimic_sample.root), "--recipe", "nope",
                    "--out", str(tmp_path / "o"))
    assert_one_line_error(result, "no recipe named 'nope'", "ldm-prompts")


def test_cli_bad_lut_file(mimic_sample, tmp_path: Path) -> None:
    (tmp_path / "lut.json").write_text("{}")
    result = invoke("build", "mimic", "--root", str(mimic_sample.root), "--recipe", "ldm-prompts",
                    "--extractor", "rules", "--lut", str(tmp_path / "lut.json"), "--out", str(tmp_path / "o"))
    assert_one_line_error(result, "lut.json", "malformed Gaussian LUT")
