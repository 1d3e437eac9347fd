"""Box <-> text formats: exact forms, round trips within one bin, tolerant parsing, special tokens."""

from __future__ import annotations

import numpy as np
import pytest

from cxrdata.errors import CxrdataError
from cxrdata.targets.box_text import (
    FORMATS,
    BoxTextError,
    bin_size,
    boxes_to_text,
    max_error,
    special_tokens,
    text_to_boxes,
)

EDGE = 0.5 / 1024  # the centre of PaliGemma's first bin
SIZES = [(2539, 3050), (3050, 2539), (2048, 2048), (640, 1000)]


def random_boxes(rng: np.random.Generator, n: int) -> list[tuple[float, ...]]:
    lo = rng.uniform(0, 0.8, (n, 2))
    hi = np.minimum(lo + rng.uniform(0.005, 0.6, (n, 2)), 1.0)
    return [tuple(b) for b in np.concatenate([lo, hi], axis=1)]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_round_trip_within_one_bin(fmt, size):
    rng = np.random.default_rng(0)
    for n in (0, 1, 3, 7):
        boxes = random_boxes(rng, n)
        assert max_error(boxes, *size, fmt) <= 0.5 + 1e-9  # half a bin: round or bin-centre decoding
    edges = [(0.0, 0.0, 1.0, 1.0)]
    assert max_error(edges, *size, fmt) <= 0.5 + 1e-9


def test_lofi_is_integers_on_the_letterboxed_square_sorted_by_x1():
    # 2000 x 2500 portrait: ratio 0.4, the image spans x 100..900 of the 1000 square
    text = boxes_to_text([(0.5, 0.5, 1.0, 1.0), (0.0, 0.0, 1.0, 1.0)], 2000, 2500)
    assert text == "[[100,0,900,1000],[500,500,900,1000]]"
    assert text_to_boxes(text, 2000, 2500) == [(0.0, 0.0, 1.0, 1.0), (0.5, 0.5, 1.0, 1.0)]
    assert boxes_to_text([], 2000, 2500) == "[]" and text_to_boxes("[]", 2000, 2500) == []


def test_token_formats_exact_form():
    box = [(0.1, 0.2, 0.3, 0.4)]
    assert boxes_to_text(box, 100, 100, "paligemma") == "<loc0204><loc0102><loc0409><loc0307>"  # y before x
    assert boxes_to_text(box, 100, 100, "florence2") == "<loc_100><loc_200><loc_300><loc_400>"
    assert boxes_to_text(box, 100, 100, "maira2") == "<box><x10><y20><x30><y40></box>"
    assert boxes_to_text(box, 100, 100, "plain") == "[[0.100,0.200,0.300,0.400]]"
    two = [(0.5, 0.5, 0.6, 0.6), (0.1, 0.2, 0.3, 0.4)]
    assert boxes_to_text(two, 100, 100, "paligemma").count(" ; ") == 1
    assert boxes_to_text(two, 100, 100, "maira2").startswith("<box><x10>")
    assert boxes_to_text([(0.0, 0.0, 1.0, 1.0)], 9, 9, "paligemma") == "<loc0000><loc0000><loc1023><loc1023>"


@pytest.mark.parametrize(
    ("fmt", "text", "want"),
    [
        ("lofi", " [ [ 0, 0 ,\n1000, 1000 ] ] ", [(0.0, 0.0, 1.0, 1.0)]),
        ("plain", "[[0.1, 0.2, .3, 1]]\n", [(0.1, 0.2, 0.3, 1.0)]),
        ("paligemma", "<loc0000> <loc0000><loc1023><loc1023> ;\n", [(EDGE, EDGE, 1 - EDGE, 1 - EDGE)]),
        ("florence2", "<loc_0><loc_0>\t<loc_999><loc_999>", [(0.0005, 0.0005, 0.9995, 0.9995)]),
        ("maira2", " <box> <x0><y0><x99><y99></box> ", [(0.005, 0.005, 0.995, 0.995)]),
    ],
)
def test_parsing_tolerates_whitespace(fmt, text, want):
    np.testing.assert_allclose(text_to_boxes(text, 1000, 1000, fmt), want)


@pytest.mark.parametrize(
    ("fmt", "text"),
    [
        ("lofi", "[[1,2,3]]"),
        ("lofi", "[[1,2,3,4]"),
        ("lofi", "[[1,2,3,4],]"),
        ("lofi", "[[1,2,3,1001]]"),
        ("lofi", "[[-1,2,3,4]]"),
        ("lofi", "the box is [[1,2,3,4]]"),
        ("plain", "[[0.1,0.2,0.3,1.5]]"),
        ("paligemma", "<loc0001><loc0002><loc0003>"),
        ("paligemma", "<loc1024><loc0002><loc0003><loc0004>"),
        ("florence2", "<loc_1><loc_2><loc_3><loc_1000>"),
        ("maira2", "<box><x1><y2><x3></box>"),
        ("maira2", "<box><x1><y2><x3><y100></box>"),
    ],
)
def test_malformed_text_is_a_clear_error(fmt, text):
    with pytest.raises(BoxTextError, match=fmt):
        text_to_boxes(text, 100, 100, fmt)
    assert issubclass(BoxTextError, CxrdataError) and issubclass(BoxTextError, ValueError)


def test_special_tokens_cover_every_encoded_token():
    assert len(special_tokens("paligemma")) == 1024 and special_tokens("paligemma")[-1] == "<loc1023>"
    assert len(special_tokens("florence2")) == 1000 and special_tokens("florence2")[0] == "<loc_0>"
    maira = special_tokens("maira2")
    assert len(maira) == 202 and {"<box>", "</box>", "<x99>", "<y0>"} <= set(maira)
    assert special_tokens("lofi") == special_tokens("plain") == ()
    rng = np.random.default_rng(5)
    for fmt in ("paligemma", "florence2", "maira2"):
        text = boxes_to_text(random_boxes(rng, 20), 300, 400, fmt).replace(" ; ", "")
        vocab = set(special_tokens(fmt))
        pieces = text.replace(">", ">\n").split()
        assert pieces and all(p in vocab for p in pieces)


def test_bin_sizes():
    assert bin_size("paligemma", 10, 10) == (1 / 1024, 1 / 1024)
    bx, by = bin_size("lofi", 2000, 2500)  # 1 unit of 1000 = 2.5 px of the long side
    assert bx == pytest.approx(2.5 / 2000) and by == pytest.approx(2.5 / 2500)


def test_bad_inputs():
    with pytest.raises(ValueError, match="unknown box format"):
        boxes_to_text([], 10, 10, "yolo")  # type: ignore[arg-type]
    with pytest.raises(BoxTextError, match="4 finite"):
        boxes_to_text([(0.1, 0.2, float("nan"), 0.4)], 10, 10)
