"""The RadGraph-XL backend: label normalisation and anatomy phrases on hand-written radgraph outputs,
the model-file checks, and the batched runner against the radgraph package's own one-at-a-time call on
a tiny random model in the package's format (tests/radgraph_tiny.py)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import shutil
from pathlib import Path
from typing import Any

import pytest

from cxrdata.errors import CxrdataError
from cxrdata.extract.base import ANAT_DP, Entity
from cxrdata.extract.radgraph import (
    anatomy_phrases,
    check_model_dir,
    entities_from_annotation,
    join_adjacent,
    model_fingerprint,
    normalise_label,
)

# radgraph's reader warns about one-word sentences; "Unchanged" is one on purpose.
pytestmark = pytest.mark.filterwarnings("ignore:Document .* single token:UserWarning")

XL_ANAT_DP = "Anatomy::definitely present"
XL_OBS_DP = "Observation::definitely present"


def _entity(tokens: str, label: str, start: int, end: int, *relations: tuple[str, str]) -> dict[str, Any]:
    return {"tokens": tokens, "label": label, "start_ix": start, "end_ix": end,
            "relations": [list(r) for r in relations]}


def _output(text: str, *entities: dict[str, Any]) -> dict[str, Any]:
    """One sentence's result in radgraph's format (entity keys "1", "2", …)."""
    return {"text": text, "entities": {str(i + 1): e for i, e in enumerate(entities)},
            "data_source": None, "data_split": "inference"}


# "Left lower lobe atelectasis." as RadGraph-XL annotates it: anatomy word by word, tied by `modify`.
LLL = _output(
    "Left lower lobe atelectasis .",
    _entity("Left", XL_ANAT_DP, 0, 0, ("modify", "3")),
    _entity("lower", XL_ANAT_DP, 1, 1, ("modify", "3")),
    _entity("lobe", XL_ANAT_DP, 2, 2),
    _entity("atelectasis", XL_OBS_DP, 3, 3, ("located_at", "3")),
)


# -- labels and phrases (no model needed) -------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("Anatomy::definitely present", "ANAT-DP"),
        ("Anatomy::uncertain", "ANAT-U"),
        ("Anatomy::definitely absent", "ANAT-DA"),
        ("Observation::definitely present", "OBS-DP"),
        ("Observation::uncertain", "OBS-U"),
        ("Observation::definitely absent", "OBS-DA"),
        ("Observation::measurement::definitely present", "OBS-MEAS-DP"),
        ("Observation::measurement::uncertain", "OBS-MEAS-U"),
        ("Observation::measurement::definitely absent", "OBS-MEAS-DA"),
        ("Anatomy::measurement::definitely present", "ANAT-MEAS-DP"),
        ("Anatomy::measurement::uncertain", "ANAT-MEAS-U"),
        ("ANAT-DP", "ANAT-DP"),  # RadGraph v1 labels are already normal
        ("OBS-DA", "OBS-DA"),
        ("Device::present", "Device::present"),  # unknown: unchanged
    ],
)
def test_normalise_label(raw: str, normalised: str) -> None:
    assert normalise_label(raw) == normalised


def test_entities_from_handwritten_output() -> None:
    assert entities_from_annotation(LLL) == [
        Entity("Left", "ANAT-DP", 0, 0),
        Entity("lower", "ANAT-DP", 1, 1),
        Entity("lobe", "ANAT-DP", 2, 2),
        Entity("atelectasis", "OBS-DP", 3, 3),
    ]
    assert entities_from_annotation(_output("Clear .")) == []


def test_entity_keys_ordered_numerically() -> None:
    many = _output(" ".join(f"w{i}" for i in range(12)),
                   *[_entity(f"w{i}", "ANAT-DP", i, i) for i in range(12)])
    assert [e.start for e in entities_from_annotation(many)] == list(range(12))


def test_join_adjacent_makes_phrases() -> None:
    assert join_adjacent(entities_from_annotation(LLL)) == [Entity("Left lower lobe", ANAT_DP, 0, 2)]
    # "Right upper lobe and left base opacities ." : two phrases, the gap keeps them apart.
    entities = [
        Entity("Right", ANAT_DP, 0, 0), Entity("upper", ANAT_DP, 1, 1), Entity("lobe", ANAT_DP, 2, 2),
        Entity("left", ANAT_DP, 4, 4), Entity("base", ANAT_DP, 5, 5), Entity("opacities", "OBS-DP", 6, 6),
    ]
    assert join_adjacent(entities) == [
        Entity("Right upper lobe", ANAT_DP, 0, 2), Entity("left base", ANAT_DP, 4, 5),
    ]
    # Overlapping spans do not repeat words; other labels can be grouped too.
    overlap = [Entity("left lower", ANAT_DP, 0, 1), Entity("lower lobe", ANAT_DP, 1, 2)]
    assert join_adjacent(overlap) == [Entity("left lower lobe", ANAT_DP, 0, 2)]
    assert join_adjacent(entities, label="OBS-DP") == [Entity("opacities", "OBS-DP", 6, 6)]


def test_anatomy_phrases_use_modify_and_adjacency() -> None:
    assert anatomy_phrases(LLL) == [Entity("Left lower lobe", ANAT_DP, 0, 2)]
    # "Opacities in the left and right lower lobes ." : `modify` joins "left" across "and".
    both = _output(
        "Opacities in the left and right lower lobes .",
        _entity("Opacities", XL_OBS_DP, 0, 0, ("located_at", "5")),
        _entity("left", XL_ANAT_DP, 3, 3, ("modify", "5")),
        _entity("right", XL_ANAT_DP, 5, 5, ("modify", "5")),
        _entity("lower", XL_ANAT_DP, 6, 6, ("modify", "5")),
        _entity("lobes", XL_ANAT_DP, 7, 7),
    )
    assert anatomy_phrases(both) == [Entity("left right lower lobes", ANAT_DP, 3, 7)]
    # Two unrelated sites stay apart; measurements and uncertain anatomy are not ANAT-DP.
    two = _output(
        "Right apical pneumothorax ; tube tip 2 cm above the carina , left base clear .",
        _entity("Right", XL_ANAT_DP, 0, 0, ("modify", "2")),
        _entity("apical", XL_ANAT_DP, 1, 1),
        _entity("pneumothorax", XL_OBS_DP, 2, 2, ("located_at", "2")),
        _entity("2 cm above", "Anatomy::measurement::definitely present", 6, 8, ("modify", "5")),
        _entity("carina", XL_ANAT_DP, 10, 10),
        _entity("left", "Anatomy::uncertain", 12, 12),
        _entity("base", XL_ANAT_DP, 13, 13),
    )
    assert anatomy_phrases(two) == [
        Entity("Right apical", ANAT_DP, 0, 1),
        Entity("carina", ANAT_DP, 10, 10),
        Entity("base", ANAT_DP, 13, 13),
    ]
    # RadGraph v1 spelling works the same way.
    v1 = _output("left lung base", _entity("left", "ANAT-DP", 0, 0, ("modify", "3")),
                 _entity("lung", "ANAT-DP", 1, 1, ("modify", "3")), _entity("base", "ANAT-DP", 2, 2))
    assert anatomy_phrases(v1) == [Entity("left lung base", ANAT_DP, 0, 2)]
    assert anatomy_phrases(_output("Clear .")) == []


def test_missing_model_files_named_and_nothing_created(tmp_path: Path) -> None:
    with pytest.raises(CxrdataError) as err:
        check_model_dir(tmp_path)
    message = str(err.value)
    for part in ("config.json", "vocabulary/radgraph-xl__ner_labels.txt", "weights.th",
                 "StanfordAIMI/RRG_scorers", "radgraph-xl.tar.gz", str(tmp_path / "radgraph-xl")):
        assert part in message
    assert "\n" not in message
    assert list(tmp_path.iterdir()) == []  # no empty folder left behind
    with pytest.raises(CxrdataError, match="unknown RadGraph model type"):
        check_model_dir(tmp_path, "radgraph-xxl")


# -- the model (tiny random weights in radgraph's format) ------------------------------------------------

SENTENCES = [
    "Left lower lobe atelectasis.",
    "No pneumothorax.",
    "Unchanged",
    "Clear.",
    "Heart size is normal.",
    "The lungs are clear.",
    "Mild pulmonary edema and small bilateral pleural effusions, left greater than right.",
    "Patchy opacity in the right upper lobe may represent pneumonia.",
    "Endotracheal tube tip terminates 2.5 cm above the carina.",
    "There is a new 2 cm nodule in the left apex (concerning for malignancy).",
    "Streaky bibasilar opacities likely atelectasis, possibly aspiration.",
    "No focal consolidation, pleural effusion or pneumothorax.",
    "Heart size is normal.",
    "Unchanged moderate cardiomegaly with pulmonary vascular congestion.",
    "Blunting of the left costophrenic angle.",
    "Small left apical pneumothorax, decreased since the prior study; no new consolidation.",
    "Right basilar opacity may reflect atelectasis or early pneumonia.",
    "Lungs: clear!",
    "Low lung volumes with bibasilar atelectasis, increased interstitial markings, and a possible small "
    "right pleural effusion, although the right costophrenic angle is not well seen on this limited "
    "portable film, and the mediastinal contour is stable compared to the previous radiograph.",
    "Trace left effusion.",
    "Enlarged cardiac silhouette.",
    "Lingular opacity.",
]


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeded tiny RadGraph-XL model, built once, in radgraph's own layout."""
    pytest.importorskip("radgraph")
    pytest.importorskip("transformers")
    from radgraph_tiny import build_random_radgraph

    os.environ["HF_HUB_OFFLINE"] = "1"
    cache = tmp_path_factory.mktemp("radgraph-cache")
    build_random_radgraph(cache)
    return cache


@pytest.fixture(scope="session")
def extractor(tiny_cache: Path) -> Any:
    from cxrdata.extract.radgraph import RadGraphExtractor

    ex = RadGraphExtractor(tiny_cache, device="cpu", batch_size=8)
    ex.load()
    return ex


@pytest.fixture(scope="session")
def reference(tiny_cache: Path) -> Any:
    """The radgraph package's own RadGraph object (one report per forward pass)."""
    from radgraph import RadGraph

    with contextlib.redirect_stdout(io.StringIO()):
        return RadGraph(model_type="radgraph-xl", model_cache_dir=str(tiny_cache), cuda=-1)


def test_loads_through_extractor(extractor: Any, tiny_cache: Path) -> None:
    assert extractor.name == "radgraph-xl"
    assert extractor.version.startswith("radgraph-0.1.18+")
    assert extractor.version.endswith(model_fingerprint(tiny_cache / "radgraph-xl"))
    result = extractor.extract(SENTENCES)
    assert len(result) == len(SENTENCES)
    annotations = extractor.annotate(SENTENCES)
    labels = {"ANAT-DP", "ANAT-U", "ANAT-DA", "OBS-DP", "OBS-U", "OBS-DA", "ANAT-MEAS-DP", "ANAT-MEAS-U",
              "OBS-MEAS-DP", "OBS-MEAS-U", "OBS-MEAS-DA"}
    for entities, annotation in zip(result, annotations, strict=True):
        words = annotation["text"].split()
        for e in entities:
            assert e.label in labels
            assert 0 <= e.start <= e.end < len(words)
            assert e.text == " ".join(words[e.start:e.end + 1])
    assert extractor.last_errors == {}


def test_batched_equals_package_one_at_a_time(extractor: Any, reference: Any) -> None:
    expected = [reference([s])["0"] for s in SENTENCES]
    got = extractor.annotate(SENTENCES)
    assert got == expected
    # The tiny model's output is rich enough for this to mean something.
    n_entities = sum(len(a["entities"]) for a in expected)
    n_relations = sum(len(e["relations"]) for a in expected for e in a["entities"].values())
    assert n_entities >= 40 and n_relations >= 10, (n_entities, n_relations)
    assert len({len(a["text"].split()) for a in expected}) >= 12  # varied lengths
    # Any batch size gives the same, including the whole input in one pass.
    runner = extractor._runner
    for size in (1, 3, 64):
        runner.batch_size = size
        try:
            assert extractor.annotate(SENTENCES) == expected
        finally:
            runner.batch_size = extractor.batch_size


def test_batches_are_grouped_by_length(extractor: Any) -> None:
    from radgraph.utils import preprocess_reports

    docs = preprocess_reports(SENTENCES, "radgraph-xl")
    plan = extractor._runner._plan(list(range(len(docs))), docs)
    assert sorted(i for batch in plan for i in batch) == list(range(len(docs)))
    assert all(len(batch) <= extractor.batch_size for batch in plan)
    lengths = [len(docs[i]["sentences"][0]) for batch in plan for i in batch]
    assert lengths == sorted(lengths)


def test_blank_sentences_give_no_entities(extractor: Any) -> None:
    assert extractor.extract(["", "   ", "Left lower lobe atelectasis."])[:2] == [[], []]
    assert extractor.last_errors == {}
    assert extractor.extract([]) == []


def test_postprocessing_failure_is_reported_not_lost(extractor: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import radgraph.utils

    real = radgraph.utils.get_entity

    def flaky(n: Any, r: Any, s: list[str]) -> Any:
        if "pneumothorax" in s:
            raise IndexError("boom")
        return real(n, r, s)

    monkeypatch.setattr(radgraph.utils, "get_entity", flaky)
    before = extractor.n_failed
    sentences = ["Left lower lobe atelectasis.", "No pneumothorax.", "Heart size is normal."]
    result = extractor.extract(sentences)
    assert result[1] == []
    assert list(extractor.last_errors) == [1]
    assert "post-processing failed" in extractor.last_errors[1] and "boom" in extractor.last_errors[1]
    assert extractor.n_failed == before + 1
    monkeypatch.setattr(radgraph.utils, "get_entity", real)
    assert extractor.extract(sentences)[0] == result[0] and extractor.last_errors == {}


def test_inference_failure_costs_only_that_sentence(extractor: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = extractor._runner
    real = runner._forward

    def fragile(docs: list[dict[str, Any]]) -> Any:
        if any("cardiomegaly" in doc["sentences"][0] for doc in docs):
            raise RuntimeError("CUDA out of memory (simulated)")
        return real(docs)

    monkeypatch.setattr(runner, "_forward", fragile)
    expected = [a for a in extractor.annotate(SENTENCES[:6])]
    sentences = [*SENTENCES[:6], "Moderate cardiomegaly."]
    got = extractor.annotate(sentences)
    assert got[:6] == expected and got[6] is None
    assert list(extractor.last_errors) == [6] and "simulated" in extractor.last_errors[6]


def test_extractor_missing_weights_creates_nothing(tiny_cache: Path, tmp_path: Path) -> None:
    from cxrdata.extract.radgraph import RadGraphExtractor

    empty = tmp_path / "empty-cache"
    empty.mkdir()
    with pytest.raises(CxrdataError, match=r"weights\.th"):
        RadGraphExtractor(empty)
    assert list(empty.iterdir()) == []
    partial = tmp_path / "partial"
    shutil.copytree(tiny_cache / "radgraph-xl", partial / "radgraph-xl")
    (partial / "radgraph-xl" / "weights.th").write_bytes(b"")
    with pytest.raises(CxrdataError) as err:
        RadGraphExtractor(partial)
    assert str(err.value).split(": ", 1)[1].startswith("weights.th. cxrdata never downloads")


def test_missing_base_model_is_a_clear_error(tiny_cache: Path, tmp_path: Path) -> None:
    from cxrdata.extract.radgraph import RadGraphExtractor

    for name in ("no-such-org/no-such-bert", str(tmp_path / "no-such-folder")):
        cache = tmp_path / name.replace("/", "_")
        shutil.copytree(tiny_cache / "radgraph-xl", cache / "radgraph-xl")
        config_path = cache / "radgraph-xl" / "config.json"
        config = json.loads(config_path.read_text())
        config["dataset_reader"]["token_indexers"]["bert"]["model_name"] = name
        config["model"]["embedder"]["token_embedders"]["bert"]["model_name"] = name
        config_path.write_text(json.dumps(config))
        ex = RadGraphExtractor(cache, device="cpu")
        with pytest.raises(CxrdataError, match="base model") as err:
            ex.load()
        assert name in str(err.value)


def test_version_follows_the_weights(tiny_cache: Path, tmp_path: Path) -> None:
    copy = tmp_path / "radgraph-xl"
    shutil.copytree(tiny_cache / "radgraph-xl", copy)
    assert model_fingerprint(copy) == model_fingerprint(tiny_cache / "radgraph-xl")
    with (copy / "weights.th").open("ab") as f:
        f.write(b"\0")
    assert model_fingerprint(copy) != model_fingerprint(tiny_cache / "radgraph-xl")


def test_offline_flags_restored(extractor: Any) -> None:
    import huggingface_hub.constants as hub_constants

    from cxrdata.extract.radgraph import offline_hub

    before = (hub_constants.HF_HUB_OFFLINE, os.environ.get("TRANSFORMERS_OFFLINE"))
    with offline_hub():
        assert hub_constants.HF_HUB_OFFLINE is True and os.environ["HF_HUB_OFFLINE"] == "1"
    assert (hub_constants.HF_HUB_OFFLINE, os.environ.get("TRANSFORMERS_OFFLINE")) == before


def test_pickles_without_the_model(extractor: Any) -> None:
    clone = pickle.loads(pickle.dumps(extractor))
    assert clone._runner is None and clone.version == extractor.version


def test_bad_device(tiny_cache: Path) -> None:
    import torch

    from cxrdata.extract.radgraph import RadGraphExtractor

    with pytest.raises(CxrdataError, match="unknown device"):
        RadGraphExtractor(tiny_cache, device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(CxrdataError, match="no CUDA GPU"):
            RadGraphExtractor(tiny_cache, device="cuda").load()


def test_radgraph_v1_model_type(tmp_path_factory: pytest.TempPathFactory, extractor: Any) -> None:
    """The v1 model (own preprocessing, v1 labels) goes through the same runner with the same result."""
    from radgraph import RadGraph
    from radgraph_tiny import build_random_radgraph

    from cxrdata.extract.radgraph import RadGraphExtractor

    cache = tmp_path_factory.mktemp("radgraph-v1")
    build_random_radgraph(cache, "radgraph", seed=1)
    ex = RadGraphExtractor(cache, model_type="radgraph", device="cpu", batch_size=5)
    assert ex.name == "radgraph:radgraph"
    with contextlib.redirect_stdout(io.StringIO()):
        reference = RadGraph(model_type="radgraph", model_cache_dir=str(cache), cuda=-1)
    expected = [reference([s])["0"] for s in SENTENCES]
    assert ex.annotate(SENTENCES) == expected
    labels = {e.label for entities in ex.extract(SENTENCES) for e in entities}
    assert labels and labels <= {"ANAT-DP", "OBS-DP", "OBS-U", "OBS-DA"}
