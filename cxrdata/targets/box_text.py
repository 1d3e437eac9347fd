"""Canonical boxes <-> text, in the box formats a region-level VLM can be trained on.

Every format lists the boxes in ascending ``(x1, y1, x2, y2)`` order (LoFi's "sorted by x1") and has an
exact inverse, up to its quantisation (one bin; :func:`bin_size`). Parsing ignores whitespace anywhere
and raises :class:`BoxTextError` on anything else that does not fit the format.

``lofi`` (default)   ``[[x1,y1,x2,y2],...]``, integers 0-1000 on the letterboxed square
                     (``Letterbox.fit(w, h, 1000)``), rounded; decoded boxes are clipped to the image.
``paligemma``        ``<locY1><locX1><locY2><locX2>`` per box (4 digits, 1,024 bins, y before x), boxes
                     joined by `` ; `` as in PaliGemma's detection output.
``florence2``        ``<loc_X1><loc_Y1><loc_X2><loc_Y2>`` per box (1,000 bins), boxes concatenated.
``maira2``           ``<box><xX1><yY1><xX2><yY2></box>`` per box (100 bins), boxes concatenated. MAIRA-2's
                     own processor measures boxes on the image centre-cropped to its short side; here,
                     like the other token formats, they are relative to the whole image.
``plain``            ``[[x1,y1,x2,y2],...]`` with the canonical coordinates written to 3 decimals.
``qwen2vl``          ``<|box_start|>(x1,y1),(x2,y2)<|box_end|>`` per box, boxes concatenated: Qwen2-VL's grounding
                     text, coordinates normalised to [0, 1000) of the whole image (1,000 bins, x before y).
``qwen25vl``         ``[{"bbox_2d": [x1, y1, x2, y2]}, ...]``: Qwen2.5-VL's JSON, absolute integer pixels of
                     the image as its processor resizes it (:func:`qwen25vl_input_size` of the size given:
                     pass the size of the image the model is fed, i.e. the stored image).

Token formats quantise a normalised coordinate ``v`` to ``min(floor(v · bins), bins - 1)`` and decode
bin ``i`` to its centre ``(i + 0.5) / bins`` (Florence-2's and MAIRA-2's convention). Evidence for the
Qwen forms: docs/export.md.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Literal

import numpy as np

from cxrdata.boxes import Box, Letterbox
from cxrdata.errors import CxrdataError

BoxFormat = Literal["lofi", "paligemma", "florence2", "maira2", "plain", "qwen2vl", "qwen25vl"]
FORMATS: tuple[str, ...] = ("lofi", "paligemma", "florence2", "maira2", "plain", "qwen2vl", "qwen25vl")
DEFAULT_FORMAT: BoxFormat = "lofi"

LOFI_SIDE = 1000
PLAIN_DECIMALS = 3
BINS = {"paligemma": 1024, "florence2": 1000, "maira2": 100, "qwen2vl": 1000}
QWEN_BOX_START, QWEN_BOX_END = "<|box_start|>", "<|box_end|>"
QWEN_REF_START, QWEN_REF_END = "<|object_ref_start|>", "<|object_ref_end|>"
# Qwen2.5-VL's resize rule (qwen-vl-utils ``smart_resize``): sides multiples of 28, pixels within these bounds.
QWEN25_FACTOR, QWEN25_MIN_PIXELS, QWEN25_MAX_PIXELS = 28, 4 * 28 * 28, 16384 * 28 * 28

_WS = re.compile(r"\s+")
_NUM_LIST = r"\[(?:\[{n},{n},{n},{n}\](?:,\[{n},{n},{n},{n}\])*)?\]"
_INT = r"\d+"
_DEC = r"\d+(?:\.\d*)?|\.\d+"
_PATTERNS = {
    "lofi": (re.compile(_NUM_LIST.format(n=_INT)), re.compile(r"\[(\d+),(\d+),(\d+),(\d+)\]")),
    "plain": (re.compile(_NUM_LIST.format(n=f"(?:{_DEC})")),
              re.compile(rf"\[({_DEC}),({_DEC}),({_DEC}),({_DEC})\]")),
    "paligemma": (re.compile(r"(?:(?:<loc\d{4}>){4};?)*"),
                  re.compile(r"<loc(\d{4})><loc(\d{4})><loc(\d{4})><loc(\d{4})>")),
    "florence2": (re.compile(r"(?:(?:<loc_\d+>){4})*"),
                  re.compile(r"<loc_(\d+)><loc_(\d+)><loc_(\d+)><loc_(\d+)>")),
    "maira2": (re.compile(r"(?:<box><x\d+><y\d+><x\d+><y\d+></box>)*"),
               re.compile(r"<box><x(\d+)><y(\d+)><x(\d+)><y(\d+)></box>")),
    "qwen2vl": (re.compile(r"(?:<\|box_start\|>\(\d+,\d+\),\(\d+,\d+\)<\|box_end\|>)*"),
                re.compile(r"<\|box_start\|>\((\d+),(\d+)\),\((\d+),(\d+)\)<\|box_end\|>")),
}


class BoxTextError(CxrdataError, ValueError):
    """Text that is not a well-formed box list of the expected format."""


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"unknown box format {fmt!r}; expected one of {', '.join(FORMATS)}")


def _sorted(boxes: Sequence[Sequence[float]]) -> list[tuple[float, ...]]:
    rows = []
    for box in boxes:
        if len(box) != 4 or not all(math.isfinite(float(v)) for v in box):
            raise BoxTextError(f"box {list(box)!r} is not 4 finite coordinates")
        rows.append(tuple(float(v) for v in box))
    return sorted(rows)


def _quantise(v: float, bins: int) -> int:
    return min(max(math.floor(v * bins), 0), bins - 1)


def boxes_to_text(boxes: Sequence[Sequence[float]], width: int, height: int,
                  fmt: BoxFormat = DEFAULT_FORMAT) -> str:
    """Canonical boxes of a ``width`` x ``height`` image -> text in ``fmt``."""
    _check_format(fmt)
    rows = _sorted(boxes)
    if fmt == "lofi":
        square = Letterbox.fit(width, height, LOFI_SIDE)
        ints = [[min(max(round(c), 0), LOFI_SIDE) for c in square.to_square(b)] for b in rows]
        return "[" + ",".join("[" + ",".join(map(str, b)) + "]" for b in ints) + "]"
    if fmt == "plain":
        return "[" + ",".join("[" + ",".join(f"{min(max(c, 0.0), 1.0):.{PLAIN_DECIMALS}f}" for c in b) + "]"
                              for b in rows) + "]"
    if fmt == "qwen25vl":
        side_w, side_h = qwen25vl_input_size(width, height)
        pixels = [[min(max(round(c * side), 0), side) for c, side in zip(b, (side_w, side_h) * 2, strict=True)]
                  for b in rows]
        return json.dumps([{"bbox_2d": b} for b in pixels])
    bins = BINS[fmt]
    q = [[_quantise(c, bins) for c in b] for b in rows]
    if fmt == "paligemma":
        return " ; ".join("".join(f"<loc{v:04d}>" for v in (y1, x1, y2, x2)) for x1, y1, x2, y2 in q)
    if fmt == "florence2":
        return "".join("".join(f"<loc_{v}>" for v in b) for b in q)
    if fmt == "qwen2vl":
        return "".join(f"{QWEN_BOX_START}({x1},{y1}),({x2},{y2}){QWEN_BOX_END}" for x1, y1, x2, y2 in q)
    return "".join(f"<box><x{x1}><y{y1}><x{x2}><y{y2}></box>" for x1, y1, x2, y2 in q)


def qwen25vl_input_size(width: int, height: int) -> tuple[int, int]:
    """(width, height) Qwen2.5-VL's processor resizes a ``width`` x ``height`` image to: each side rounded to a
    multiple of 28, then scaled (keeping the aspect) into [4, 16384] x 28 x 28 pixels (qwen-vl-utils defaults)."""
    if width <= 0 or height <= 0 or max(width, height) / min(width, height) > 200:
        raise BoxTextError(f"image size {width}x{height} is not positive or has an aspect ratio above 200, "
                           "which Qwen2.5-VL's processor refuses")
    f = QWEN25_FACTOR
    h_bar, w_bar = max(f, round(height / f) * f), max(f, round(width / f) * f)
    if h_bar * w_bar > QWEN25_MAX_PIXELS:
        beta = math.sqrt(height * width / QWEN25_MAX_PIXELS)
        h_bar, w_bar = math.floor(height / beta / f) * f, math.floor(width / beta / f) * f
    elif h_bar * w_bar < QWEN25_MIN_PIXELS:
        beta = math.sqrt(QWEN25_MIN_PIXELS / (height * width))
        h_bar, w_bar = math.ceil(height * beta / f) * f, math.ceil(width * beta / f) * f
    return w_bar, h_bar


def _qwen25vl_boxes(text: str, width: int, height: int) -> list[Box]:
    try:
        items = json.loads(text)
    except ValueError:
        raise BoxTextError(f"not a qwen25vl box list (JSON): {text[:120]!r}") from None
    side_w, side_h = qwen25vl_input_size(width, height)
    boxes: list[Box] = []
    for item in items if isinstance(items, list) else [None]:
        box = item.get("bbox_2d") if isinstance(item, dict) else None
        if not (isinstance(box, list) and len(box) == 4 and all(type(v) is int and v >= 0 for v in box)):
            raise BoxTextError(f"not a qwen25vl box list ([{{\"bbox_2d\": [4 integers]}}, ...]): {text[:120]!r}")
        if max(box[0], box[2]) > side_w or max(box[1], box[3]) > side_h:
            raise BoxTextError(f"qwen25vl coordinate outside the {side_w}x{side_h} input image in {text[:120]!r}")
        boxes.append((box[0] / side_w, box[1] / side_h, box[2] / side_w, box[3] / side_h))
    return boxes


def text_to_boxes(text: str, width: int, height: int, fmt: BoxFormat = DEFAULT_FORMAT) -> list[Box]:
    """Text in ``fmt`` -> canonical boxes (in the order written). Raises :class:`BoxTextError`."""
    _check_format(fmt)
    if fmt == "qwen25vl":
        return _qwen25vl_boxes(text, width, height)
    compact = _WS.sub("", text)
    whole, one = _PATTERNS[fmt]
    if not whole.fullmatch(compact):
        raise BoxTextError(f"not a {fmt} box list: {text[:120]!r}")
    groups = [tuple(m) for m in one.findall(compact)]
    if fmt == "lofi":
        square = Letterbox.fit(width, height, LOFI_SIDE)
        lofi = []
        for g in groups:
            ints = [int(v) for v in g]
            if max(ints) > LOFI_SIDE:
                raise BoxTextError(f"lofi coordinate above {LOFI_SIDE} in {text[:120]!r}")
            lofi.append(_clip(square.from_square(ints)))
        return lofi
    if fmt == "plain":
        plain: list[Box] = [(float(a), float(b), float(c), float(d)) for a, b, c, d in groups]
        if any(v > 1.0 for box in plain for v in box):
            raise BoxTextError(f"plain coordinate above 1 in {text[:120]!r}")
        return plain
    bins = BINS[fmt]
    tokens: list[Box] = []
    for g in groups:
        a, b, c, d = (int(v) for v in g)
        if max(a, b, c, d) >= bins:
            raise BoxTextError(f"{fmt} bin above {bins - 1} in {text[:120]!r}")
        x1, y1, x2, y2 = (b, a, d, c) if fmt == "paligemma" else (a, b, c, d)
        tokens.append(((x1 + 0.5) / bins, (y1 + 0.5) / bins, (x2 + 0.5) / bins, (y2 + 0.5) / bins))
    return tokens


def _clip(box: Sequence[float]) -> Box:
    x0, y0, x1, y1 = (min(max(v, 0.0), 1.0) for v in box)
    return (x0, y0, x1, y1)


def bin_size(fmt: BoxFormat, width: int, height: int) -> tuple[float, float]:
    """One quantisation step of ``fmt`` in canonical units along x and y."""
    _check_format(fmt)
    if fmt == "lofi":
        ratio = Letterbox.fit(width, height, LOFI_SIDE).ratio
        return 1 / (ratio * width), 1 / (ratio * height)
    if fmt == "plain":
        return 10.0**-PLAIN_DECIMALS, 10.0**-PLAIN_DECIMALS
    if fmt == "qwen25vl":
        side_w, side_h = qwen25vl_input_size(width, height)
        return 1 / side_w, 1 / side_h
    return 1 / BINS[fmt], 1 / BINS[fmt]


def special_tokens(fmt: BoxFormat) -> tuple[str, ...]:
    """The tokens ``fmt`` needs added to a tokenizer (none for the number formats)."""
    _check_format(fmt)
    if fmt == "paligemma":
        return tuple(f"<loc{i:04d}>" for i in range(BINS[fmt]))
    if fmt == "florence2":
        return tuple(f"<loc_{i}>" for i in range(BINS[fmt]))
    if fmt == "maira2":
        n = BINS[fmt]
        return ("<box>", "</box>", *(f"<x{i}>" for i in range(n)), *(f"<y{i}>" for i in range(n)))
    if fmt == "qwen2vl":  # already in Qwen2-VL's vocabulary; another model's tokenizer needs them added
        return (QWEN_BOX_START, QWEN_BOX_END, QWEN_REF_START, QWEN_REF_END)
    return ()


def max_error(boxes: Sequence[Sequence[float]], width: int, height: int, fmt: BoxFormat) -> float:
    """Largest round-trip error of ``boxes`` through ``fmt``, in bins (a check for tests and tools)."""
    text = boxes_to_text(boxes, width, height, fmt)
    back = np.array(text_to_boxes(text, width, height, fmt)).reshape(-1, 4)
    want = np.array(_sorted(boxes)).reshape(-1, 4)
    bx, by = bin_size(fmt, width, height)
    err = np.abs(back - want) / np.array([bx, by, bx, by])
    return float(err.max(initial=0.0))


def with_object_ref(phrase: str, box_text: str) -> str:
    """Qwen2-VL's referring form: ``<|object_ref_start|>phrase<|object_ref_end|>`` then the phrase's box text."""
    return f"{QWEN_REF_START}{phrase}{QWEN_REF_END}{box_text}"


def split_object_ref(text: str) -> tuple[str, str]:
    """The inverse of :func:`with_object_ref`: (phrase, box text). Raises :class:`BoxTextError`."""
    start, end = text.find(QWEN_REF_START), text.find(QWEN_REF_END)
    if start != 0 or end < 0:
        raise BoxTextError(f"not {QWEN_REF_START}phrase{QWEN_REF_END}<boxes>: {text[:120]!r}")
    return text[len(QWEN_REF_START):end], text[end + len(QWEN_REF_END):]
