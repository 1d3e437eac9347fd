"""The Qwen box texts: Qwen2-VL's ``<|box_start|>(x1,y1),(x2,y2)<|box_end|>`` (0-1000) and Qwen2.5-VL's
``bbox_2d`` JSON (absolute pixels of the resized input): exact forms, round trips, the resize rule."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_box_text import random_boxes

from cxrdata.targets.box_text import (
    BoxTextError,
    bin_size,
    boxes_to_text,
    max_error,
    qwen25vl_input_size,
    special_tokens,
    split_object_ref,
    text_to_boxes,
    with_object_ref,
)

SIZES = [(2539, 3050), (3050, 2539), (2048, 2048), (640, 1000), (512, 425), (30, 20), (9000, 7000)]


@pytest.mark.parametrize("fmt", ["qwen2vl", "qwen25vl"])
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_round_trip_within_half_a_bin(fmt, size):
    rng = np.random.default_rng(1)
    for n in (0, 1, 2, 5):
        assert max_error(random_boxes(rng, n), *size, fmt) <= 0.5 + 1e-9
    assert max_error([(0.0, 0.0, 1.0, 1.0)], *size, fmt) <= 0.5 + 1e-9


def test_qwen2vl_exact_form_x_before_y_sorted_by_x1():
    two = [(0.5, 0.5, 0.6, 0.6), (0.1, 0.2, 0.3, 0.4)]
    text = boxes_to_text(two, 640, 480, "qwen2vl")
    assert text == "<|box_start|>(100,200),(300,400)<|box_end|><|box_start|>(500,500),(600,600)<|box_end|>"
    assert boxes_to_text([(0.0, 0.0, 1.0, 1.0)], 9, 9, "qwen2vl") == "<|box_start|>(0,0),(999,999)<|box_end|>"
    np.testing.assert_allclose(text_to_boxes(text, 640, 480, "qwen2vl"),
                               [(0.1005, 0.2005, 0.3005, 0.4005), (0.5005, 0.5005, 0.6005, 0.6005)])
    assert text_to_boxes(" <|box_start|> (0, 0),\n(999,999) <|box_end|> ", 5, 5, "qwen2vl") == [
        (0.0005, 0.0005, 0.9995, 0.9995)]
    assert bin_size("qwen2vl", 640, 480) == (1 / 1000, 1 / 1000)


def test_qwen25vl_exact_form_is_pixels_of_the_resized_input():
    assert qwen25vl_input_size(512, 425) == (504, 420)  # each side rounded to a multiple of 28
    text = boxes_to_text([(0.1, 0.2, 0.3, 0.4)], 512, 425, "qwen25vl")
    assert json.loads(text) == [{"bbox_2d": [50, 84, 151, 168]}]  # 0.1*504 = 50.4, 0.2*420 = 84, ...
    assert text_to_boxes(text, 512, 425, "qwen25vl") == [(50 / 504, 84 / 420, 151 / 504, 168 / 420)]
    assert bin_size("qwen25vl", 512, 425) == (1 / 504, 1 / 420)
    assert boxes_to_text([], 512, 425, "qwen25vl") == "[]" and text_to_boxes("[]", 512, 425, "qwen25vl") == []


RESIZE_SIZES = [(w, h) for w in (20, 27, 28, 29, 333, 512, 1000, 3050, 4280) for h in (20, 300, 2539, 4096)]


@pytest.mark.parametrize("size", RESIZE_SIZES)
def test_resize_rule_matches_transformers(size):
    smart_resize = pytest.importorskip("transformers.models.qwen2_vl.image_processing_qwen2_vl").smart_resize
    width, height = size
    if max(size) / min(size) > 200:
        with pytest.raises(ValueError, match="aspect ratio"):
            smart_resize(height, width)
        with pytest.raises(BoxTextError, match="aspect ratio"):
            qwen25vl_input_size(width, height)
        return
    h, w = smart_resize(height, width, factor=28, min_pixels=4 * 28 * 28, max_pixels=16384 * 28 * 28)
    assert qwen25vl_input_size(width, height) == (w, h)


@pytest.mark.parametrize(
    ("fmt", "text"),
    [
        ("qwen2vl", "<|box_start|>(1,2),(3)<|box_end|>"),
        ("qwen2vl", "<|box_start|>(1,2),(3,1000)<|box_end|>"),
        ("qwen2vl", "<|box_start|>(1,2),(3,4)"),
        ("qwen2vl", "the box <|box_start|>(1,2),(3,4)<|box_end|>"),
        ("qwen25vl", '[{"bbox_2d": [1, 2, 3]}]'),
        ("qwen25vl", '[{"bbox_2d": [1, 2, 3, 4.5]}]'),
        ("qwen25vl", '[{"bbox_2d": [1, 2, 3, 1000]}]'),
        ("qwen25vl", '{"bbox_2d": [1, 2, 3, 4]}'),
        ("qwen25vl", "[[1, 2, 3, 4]]"),
        ("qwen25vl", "not json"),
    ],
)
def test_malformed_text_is_a_clear_error(fmt, text):
    with pytest.raises(BoxTextError, match=fmt):
        text_to_boxes(text, 100, 100, fmt)


def test_object_ref_wrapping_and_its_inverse():
    boxes = boxes_to_text([(0.1, 0.2, 0.3, 0.4)], 100, 100, "qwen2vl")
    text = with_object_ref("left lower lobe opacity", boxes)
    assert text == ("<|object_ref_start|>left lower lobe opacity<|object_ref_end|>"
                    "<|box_start|>(100,200),(300,400)<|box_end|>")
    assert split_object_ref(text) == ("left lower lobe opacity", boxes)
    with pytest.raises(BoxTextError):
        split_object_ref(boxes)
    assert special_tokens("qwen2vl") == ("<|box_start|>", "<|box_end|>", "<|object_ref_start|>", "<|object_ref_end|>")
    assert special_tokens("qwen25vl") == ()


def test_lofi_targets_stage_measures_qwen25vl_on_the_stored_image():
    from cxrdata.targets.regions_stage import RegionTargetsStage

    row = {"id": "a", "original_width": 2540, "original_height": 2108, "image_width": 512, "image_height": 425,
           "regions": [{"box": [0.1, 0.2, 0.3, 0.4], "phrase": "Nodule"}]}
    out = RegionTargetsStage(box_format="qwen25vl").process(dict(row))
    assert json.loads(out["grounding"][0]["target"]) == [{"bbox_2d": [50, 84, 151, 168]}]  # on 504 x 420
    qwen2 = RegionTargetsStage(box_format="qwen2vl").process(dict(row))
    assert qwen2["grounding"][0]["target"] == "<|box_start|>(100,200),(300,400)<|box_end|>"
