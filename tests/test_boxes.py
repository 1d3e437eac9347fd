"""The canonical box form and every conversion at the edges, in both directions."""

import math

import pytest

from cxrdata.boxes import (
    Letterbox,
    check_box,
    from_xywh_pixels,
    from_xyxy_pixels,
    to_xywh_pixels,
    to_xyxy_pixels,
)
from cxrdata.errors import Rejected

W, H = 2544, 3056


def test_xywh_pixels_to_canonical_and_back():
    # An MS-CXR row: x=196, y=1136, w=532, h=315 on a 1767 x 2021 image.
    box = from_xywh_pixels(196, 1136, 532, 315, 1767, 2021)
    assert box == pytest.approx((196 / 1767, 1136 / 2021, 728 / 1767, 1451 / 2021))
    assert to_xywh_pixels(box, 1767, 2021) == pytest.approx((196, 1136, 532, 315))


def test_xyxy_pixels_round_trip():
    box = from_xyxy_pixels(900.96, 587.81, 1205.36, 888.71, W, H)
    assert to_xyxy_pixels(box, W, H) == pytest.approx((900.96, 587.81, 1205.36, 888.71))


def test_resized_image_pixels_scale_with_the_image():
    box = from_xyxy_pixels(254.4, 305.6, 1272, 1528, W, H)
    # The same box on the image stored at 512 px longest side (426 x 512).
    assert to_xyxy_pixels(box, 426, 512) == pytest.approx((42.6, 51.2, 213, 256))


def test_letterbox_matches_chest_imagenome_224_mapping():
    # ImaGenome: x_224 = x_orig * ratio + left, y_224 = y_orig * ratio + top.
    lb = Letterbox.fit(W, H, 224)
    assert lb.ratio == pytest.approx(224 / 3056)
    assert lb.top == pytest.approx(0)
    assert lb.left == pytest.approx((224 - W * 224 / 3056) / 2)
    original = (1500, 886, 2278, 1214)
    box = from_xyxy_pixels(*original, W, H)
    square = lb.to_square(box)
    offsets = (lb.left, 0, lb.left, 0)
    assert square == pytest.approx(tuple(v * lb.ratio + off for v, off in zip(original, offsets, strict=True)))
    assert lb.from_square(square) == pytest.approx(box)


def test_letterbox_landscape_pads_top_and_bottom():
    lb = Letterbox.fit(3056, 2544, 1000)
    assert lb.left == pytest.approx(0)
    assert lb.top == pytest.approx((1000 - 2544 * 1000 / 3056) / 2)
    assert lb.to_square((0, 0, 1, 1)) == pytest.approx((0, lb.top, 1000, 1000 - lb.top))


def test_valid_box_passes_unchanged():
    assert check_box((0.1, 0.2, 0.3, 0.4)) == ((0.1, 0.2, 0.3, 0.4), False)


def test_slight_overshoot_is_clipped_and_flagged():
    box, clipped = check_box((-0.01, 0.2, 1.015, 0.4))
    assert clipped and box == (0.0, 0.2, 1.0, 0.4)


@pytest.mark.parametrize(
    ("box", "reason"),
    [
        ((math.nan, 0.1, 0.2, 0.3), "box_nan"),
        ((0.1, 0.1, math.inf, 0.3), "box_nan"),
        ((0.3, 0.1, 0.3, 0.4), "box_empty"),
        ((0.3, 0.5, 0.4, 0.2), "box_empty"),
        ((0.5, 0.5, 1.2, 0.6), "box_out_of_bounds"),
        ((-0.3, 0.5, 0.2, 0.6), "box_out_of_bounds"),
        ((0.1, 0.2, 0.3), "box_malformed"),
    ],
)
def test_bad_boxes_are_rejected_with_a_reason(box, reason):
    with pytest.raises(Rejected) as info:
        check_box(box)
    assert info.value.reason == reason
