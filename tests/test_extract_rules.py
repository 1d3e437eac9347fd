"""The rule-based anatomy extractor and the persistent extraction cache."""

from __future__ import annotations

import multiprocessing
import pickle
from pathlib import Path

import pytest

from cxrdata.extract.base import Extractor
from cxrdata.extract.cache import CachedExtractor, ExtractionCache, sentence_key
from cxrdata.extract.rules import ANAT_DA, ANAT_U, RuleExtractor
from cxrdata.text.entities import ANAT_DP, Entity
from cxrdata.text.tokens import tokenize

RULES = RuleExtractor()


def entities(sentence: str) -> list[tuple[str, str]]:
    return [(e.text, e.label) for e in RULES.extract_one(sentence)]


@pytest.mark.parametrize(
    ("sentence", "expected"),
    [
        ("Large left pleural effusion is new.", [("left pleural", ANAT_DP)]),
        ("Right lower lobe opacities are better seen in prior CT.", [("Right lower lobe", ANAT_DP)]),
        ("Small right effusion is new.", [("right", ANAT_DP)]),
        ("Pneumothorax on the right.", [("right", ANAT_DP)]),
        ("There is a right-sided pneumothorax.", [("right - sided", ANAT_DP)]),
        ("Opacity in the right mid-lung.", [("right mid - lung", ANAT_DP)]),
        (
            "Bibasilar atelectasis, left greater than right basilar.",
            [("Bibasilar", ANAT_DP), ("left", ANAT_DP), ("right basilar", ANAT_DP)],
        ),
        ("Opacity at the base of the left lung.", [("base", ANAT_DP), ("left lung", ANAT_DP)]),
        ("Blunting of both costophrenic angles.", [("both costophrenic angles", ANAT_DP)]),
        ("Lingular and retrocardiac opacities.", [("Lingular", ANAT_DP), ("retrocardiac", ANAT_DP)]),
        ("The heart is enlarged.", [("heart", ANAT_DP)]),
        ("The cardiac silhouette is enlarged.", [("cardiac silhouette", ANAT_DP)]),
        ("Mild pulmonary edema.", [("pulmonary", ANAT_DP)]),
        ("Right IJ catheter ends in the SVC.", [("Right IJ", ANAT_DP)]),
        # anatomy in a negated or uncertain context is not definitely present
        ("No left effusion.", [("left", ANAT_DA)]),
        ("The left lower lobe opacity has resolved.", [("left lower lobe", ANAT_DA)]),
        ("Left lower lobe opacity without right effusion.", [("Left lower lobe", ANAT_DP), ("right", ANAT_DA)]),
        ("Possible right middle lobe pneumonia.", [("right middle lobe", ANAT_U)]),
        # lexicon-based: any side + lung-structure word is anatomy
        ("The patient is on the left side of the bed in the hospital.", [("left side", ANAT_DP)]),
        # issue 13: a side after the finding, position modifiers, "CP angle", view words stay in the run
        ("Moderate effusions bilaterally.", [("bilaterally", ANAT_DP)]),
        ("Small pleural effusions are present bilaterally.", [("pleural", ANAT_DP), ("bilaterally", ANAT_DP)]),
        ("Left effusion and right PICC.", [("Left", ANAT_DP)]),
        ("Right medial basilar atelectasis.", [("Right medial basilar", ANAT_DP)]),
        ("Blunting of the left CP angle.", [("left CP angle", ANAT_DP)]),
        ("Pneumothorax seen on the left lateral decubitus film.", [("left lateral", ANAT_DP)]),
        ("Opacity posterior to the heart.", [("posterior", ANAT_DP), ("heart", ANAT_DP)]),
        # nothing to extract
        ("Right PICC line in place.", []),
        ("No acute cardiopulmonary process.", []),
        ("", []),
    ],
)
def test_entities(sentence: str, expected: list[tuple[str, str]]) -> None:
    assert entities(sentence) == expected


def test_spans_index_radgraph_style_tokens() -> None:
    sentence = "Small effusion blunts the right costophrenic angle."
    (entity,) = RULES.extract_one(sentence)
    tokens = tokenize(sentence)
    assert (entity.start, entity.end) == (4, 6)
    assert " ".join(t.text for t in tokens[entity.start : entity.end + 1]) == entity.text


def test_protocol_and_batch_order() -> None:
    extractor: Extractor = RULES
    assert (extractor.name, extractor.version) == ("rules", "2")
    batch = ["No pneumothorax.", "Left base atelectasis.", "Bilateral effusions."]
    assert extractor.extract(batch) == [RULES.extract_one(s) for s in batch]
    assert extractor.extract([]) == []


def test_deterministic() -> None:
    sentence = "Left lower lobe and right upper lobe consolidation."
    assert RULES.extract([sentence] * 3) == [RULES.extract_one(sentence)] * 3


# ---------------------------------------------------------------- cache


class Counting:
    """Wraps an extractor and records what reaches it."""

    name, version = "rules", "1"

    def __init__(self) -> None:
        self.seen: list[str] = []

    def extract(self, sentences):
        self.seen += list(sentences)
        return RULES.extract(sentences)


def test_cache_round_trip_and_no_recompute(tmp_path: Path) -> None:
    cache = ExtractionCache.in_dir(tmp_path)
    inner = Counting()
    cached = CachedExtractor(inner, cache)
    batch = ["Left base atelectasis.", "No pneumothorax.", "Left base atelectasis."]
    first = cached.extract(batch)
    assert first == RULES.extract(batch)
    assert inner.seen == ["Left base atelectasis.", "No pneumothorax."]  # each distinct sentence once
    assert (cached.hits, cached.misses) == (0, 3)
    # a new process-like start: new cache object, same file
    again = CachedExtractor(inner, ExtractionCache(tmp_path / "cache" / "extract.sqlite"))
    assert again.extract(batch) == first
    assert inner.seen == ["Left base atelectasis.", "No pneumothorax."]
    assert (again.hits, again.misses) == (3, 0)
    assert cache.count() == 2 and cache.count("rules", "1") == 2 and cache.count("rules", "2") == 0


def test_cache_is_keyed_by_extractor_name_and_version(tmp_path: Path) -> None:
    cache = ExtractionCache(tmp_path / "c.sqlite")
    key = sentence_key("x")
    cache.put_many("a", "1", [(key, [Entity("left", ANAT_DP, 0, 0)])])
    assert cache.get_many("a", "1", [key]) == {key: [Entity("left", ANAT_DP, 0, 0)]}
    assert cache.get_many("a", "2", [key]) == {}
    assert cache.get_many("b", "1", [key]) == {}
    # the first stored result wins
    cache.put_many("a", "1", [(key, [])])
    assert cache.get_many("a", "1", [key])[key] == [Entity("left", ANAT_DP, 0, 0)]
    assert sentence_key("x") == "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"


def test_cache_many_keys_and_empty_results(tmp_path: Path) -> None:
    cache = ExtractionCache(tmp_path / "c.sqlite")
    items = [(sentence_key(str(i)), [] if i % 2 else [Entity("lung", ANAT_DP, i, i)]) for i in range(1200)]
    cache.put_many("r", "1", items)
    assert cache.get_many("r", "1", [k for k, _ in items]) == dict(items)


def test_cache_pickles_without_connection(tmp_path: Path) -> None:
    cached = CachedExtractor(RULES, ExtractionCache(tmp_path / "c.sqlite"))
    cached.extract(["Left base atelectasis."])
    clone = pickle.loads(pickle.dumps(cached))
    assert clone.cache.count() == 1


def _worker(args: tuple[str, int]) -> int:
    path, worker = args
    cached = CachedExtractor(RuleExtractor(), ExtractionCache(path, timeout_s=60))
    sentences = [f"Left lower lobe opacity number {i}." for i in range(200)]
    for start in range(0, 200, 20):
        cached.extract(sentences[start : start + 20][::-1] if worker % 2 else sentences[start : start + 20])
    return cached.misses


@pytest.mark.slow
def test_cache_under_several_processes(tmp_path: Path) -> None:
    path = str(tmp_path / "c.sqlite")
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        misses = pool.map(_worker, [(path, i) for i in range(4)])
    cache = ExtractionCache(path)
    assert cache.count() == 200
    assert sum(misses) >= 200
    got = cache.get_many("rules", "2", [sentence_key("Left lower lobe opacity number 7.")])
    assert list(got.values()) == [RULES.extract_one("Left lower lobe opacity number 7.")]
