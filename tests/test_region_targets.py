"""Grounding and dense-caption pairs from a record's regions."""

from __future__ import annotations

from collections import Counter

import pytest

from cxrdata.errors import Rejected
from cxrdata.targets.box_text import text_to_boxes
from cxrdata.targets.regions import (
    dense_caption_pair,
    group_by_phrase,
    record_rng,
    region_pairs,
    sample_region_pair,
)

W, H = 2000, 2500  # letterboxed onto x 100..900 of the 1000 square
REGIONS = [
    {"box": (0.5, 0.5, 1.0, 1.0), "phrase": "right  lower lobe opacity"},
    {"box": (0.0, 0.0, 0.5, 0.5), "phrase": "cardiomegaly"},
    {"box": (0.0, 0.5, 0.5, 1.0), "phrase": "right lower lobe opacity "},
]


def test_group_by_phrase_collects_boxes_in_first_appearance_order():
    groups = group_by_phrase(REGIONS)
    assert [p for p, _ in groups] == ["right lower lobe opacity", "cardiomegaly"]
    assert groups[0][1] == [(0.5, 0.5, 1.0, 1.0), (0.0, 0.5, 0.5, 1.0)]


def test_pairs_follow_the_lofi_templates():
    pairs = region_pairs(REGIONS, W, H)
    assert [p.task for p in pairs] == ["grounding", "dense_caption", "grounding", "dense_caption"]
    grounding, caption = pairs[0], pairs[1]
    assert grounding.prompt == 'Detect all instances of "right lower lobe opacity".'
    assert grounding.target == "[[100,500,500,1000],[500,500,900,1000]]"  # all its boxes, sorted by x1
    assert caption.prompt == "Describe the regions: [[100,500,500,1000],[500,500,900,1000]]"
    assert caption.target == "right lower lobe opacity"
    assert text_to_boxes(grounding.target, W, H) == [(0.0, 0.5, 0.5, 1.0), (0.5, 0.5, 1.0, 1.0)]


def test_box_format_is_a_parameter():
    pair = dense_caption_pair("x", [(0.1, 0.2, 0.3, 0.4)], W, H, fmt="florence2")
    assert pair.prompt == "Describe the regions: <loc_100><loc_200><loc_300><loc_400>"
    pairs = region_pairs(REGIONS, W, H, fmt="paligemma")
    assert pairs[0].target.startswith("<loc")


def test_sampling_is_deterministic_per_record_and_balanced():
    a = sample_region_pair("study-1", REGIONS, W, H, seed=3)
    assert a == sample_region_pair("study-1", REGIONS, W, H, seed=3)
    picks = [sample_region_pair(f"study-{i}", REGIONS, W, H, seed=0) for i in range(2000)]
    tasks = Counter(p.task for p in picks)
    phrases = Counter(p.phrase for p in picks)
    assert 900 < tasks["grounding"] < 1100 and 900 < phrases["cardiomegaly"] < 1100
    epochs = {sample_region_pair("study-1", REGIONS, W, H, epoch=e) for e in range(20)}
    assert len(epochs) > 1  # each epoch may pick differently
    assert record_rng("a", 0).random() == record_rng("a", 0).random() != record_rng("a", 1).random()


def test_no_regions_and_bad_regions():
    assert sample_region_pair("r", [], W, H) is None and region_pairs([], W, H) == []
    with pytest.raises(Rejected) as empty:
        group_by_phrase([{"box": (0.1, 0.1, 0.2, 0.2), "phrase": "  "}])
    assert empty.value.reason == "region_phrase_empty"
    with pytest.raises(Rejected) as nobox:
        group_by_phrase([{"phrase": "effusion"}])
    assert nobox.value.reason == "box_malformed"
    with pytest.raises(Rejected) as flat:
        group_by_phrase([{"box": (0.3, 0.1, 0.3, 0.2), "phrase": "effusion"}])
    assert flat.value.reason == "box_empty"
