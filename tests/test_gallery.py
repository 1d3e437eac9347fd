"""`cxrdata preview --html`, the gallery: thumbnails, boxes in normalised coordinates, filters and toggles as
headless Chromium runs them (a URL fragment sets them), sentences linked to their boxes, distinct colours."""

from __future__ import annotations

import base64
import colorsys
import html
import io
import re
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from cxrdata_testing import build_with, dump_dom
from PIL import Image

from cxrdata.api import bundled_root
from cxrdata.cli import main
from cxrdata.inspect.colours import PALETTE, assign, distinct, hex_colour
from cxrdata.inspect.html import render_html
from cxrdata.inspect.panels import panel
from cxrdata.sample.imagenome import write_imagenome_sample

FIGURE = re.compile(r'<figure data-id="([^"]*)"([^>]*)>(.*?)</figure>', re.S)


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def rows_of(out: Path, config: str) -> dict[str, dict]:
    return {row["id"]: row for path in sorted((out / "data" / config).glob("*.parquet"))
            for row in pq.read_table(path).to_pylist()}


def figures(dom: str) -> dict[str, tuple[str, str]]:
    """record id -> (the figure's attributes, its inside)."""
    return {html.unescape(i): (attrs, body) for i, attrs, body in FIGURE.findall(dom)}


def visible(dom: str) -> set[str]:
    return {i for i, (attrs, _) in figures(dom).items() if " hidden" not in attrs}


def shown_count(dom: str) -> int:
    return int(re.search(r'<b id="shown">(\d+)</b>', dom).group(1))


@pytest.fixture(scope="module")
def vindr_page(tmp_path_factory) -> tuple[Path, dict[str, dict]]:
    """The gallery of every record of the bundled VinDr-CXR sample (two splits, readers, labels)."""
    root = tmp_path_factory.mktemp("gallery-vindr")
    build_with("vindr", root / "out", root=bundled_root("vindr"), max_reject_share=1)
    result = invoke("preview", str(root / "out"), "--n", "100", "--html", str(root / "page.html"))
    assert result.exit_code == 0, result.output
    return root / "page.html", rows_of(root / "out", "vindr")


def test_thumbnails_are_small_jpegs_and_boxes_are_normalised(vindr_page):
    page, records = vindr_page
    text = page.read_text()
    assert not re.search(r"https?://", text) and "<link" not in text and "<script src" not in text
    found = figures(text)
    assert set(found) == set(records)
    for record_id, (_, body) in found.items():
        row = records[record_id]
        data = base64.b64decode(re.search(r'class="thumb"[^>]*src="data:image/jpeg;base64,([^"]*)"', body).group(1))
        thumb = Image.open(io.BytesIO(data))
        scale = min(1.0, 256 / max(row["image_width"], row["image_height"]))
        assert thumb.format == "JPEG" and thumb.size == (round(row["image_width"] * scale),
                                                         round(row["image_height"] * scale))
        drawn = [tuple(float(v) for v in m) for m in
                 re.findall(r'<rect [^>]*x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)"', body)]
        expected = [(round(x0, 4), round(y0, 4), round(x1 - x0, 4), round(y1 - y0, 4))
                    for x0, y0, x1, y1 in (r["box"] for r in row["regions"] if r["box"] is not None)]
        assert drawn == pytest.approx(expected, abs=1.5e-4), record_id
    stored = sum(len(r["image"]["bytes"]) for r in records.values())
    assert len(text.encode()) < stored  # thumbnails, not the stored images


def expected_facets(row: dict) -> dict[str, set[str]]:
    """What a VinDr-CXR record is filtered on, from its columns: box labels and image labels; their readers."""
    regions = [r for r in row["regions"] if r["box"] is not None]
    return {"class": {r["label"] for r in regions} | {label for e in row["image_labels"] for label in e["labels"]},
            "reader": {r["reader"] for r in regions} | {e["reader"] for e in row["image_labels"]}}


def test_chromium_filters_change_what_is_shown(vindr_page, tmp_path):
    page, records = vindr_page
    everything = dump_dom(page, tmp_path / "profile")
    assert visible(everything) == set(records) and shown_count(everything) == len(records)

    test_ids = {i for i, r in records.items() if r["split"] == "test"}
    dom = dump_dom(page, tmp_path / "profile", "split=test")
    assert visible(dom) == test_ids and shown_count(dom) == len(test_ids) and 0 < len(test_ids) < len(records)

    classes = Counter(c for r in records.values() for c in expected_facets(r)["class"])
    label = next(c for c, n in classes.most_common() if 1 < n < len(records))
    with_label = {i for i, r in records.items() if label in expected_facets(r)["class"]}
    dom = dump_dom(page, tmp_path / "profile", f"class={label}")
    assert visible(dom) == with_label

    both = {i for i in with_label if records[i]["split"] == "train"}
    assert visible(dump_dom(page, tmp_path / "profile", f"class={label}&split=train")) == both

    readers = Counter(x for r in records.values() for x in expected_facets(r)["reader"])
    reader = next(x for x, n in readers.most_common() if 1 < n < len(records))
    dom = dump_dom(page, tmp_path / "profile", f"reader={reader}")
    assert visible(dom) == {i for i, r in records.items() if reader in expected_facets(r)["reader"]}
    for record_id in visible(dom):  # the other readers' boxes are hidden
        for attrs in re.findall(r"<rect ([^>]*)>", figures(dom)[record_id][1]):
            assert (f'data-reader="{reader}"' in attrs) == ("off" not in attrs.split('class="')[-1]), attrs

    word = "effusion"  # searched in the caption: the region phrases, else the image labels
    with_word = {i for i, r in records.items() if word in " ".join(
        [x["phrase"] or x["label"] for x in r["regions"]] or [c for e in r["image_labels"] for c in e["labels"]]
    ).lower()}
    assert with_word and visible(dump_dom(page, tmp_path / "profile", f"q={word}")) == with_word


def test_legend_toggle_hides_one_class(vindr_page, tmp_path):
    page, records = vindr_page
    label = Counter(r["label"] for row in records.values() for r in row["regions"] if r["box"]).most_common(1)[0][0]
    dom = dump_dom(page, tmp_path / "profile", f"hide={label}")
    rects = re.findall(r"<rect ([^>]*)>", dom)
    hidden = [a for a in rects if re.search(r'class="[^"]*\boff\b', a)]
    assert hidden and all(f'data-key="{html.escape(label)}"' in a for a in hidden)
    assert len(hidden) == sum(r["label"] == label for row in records.values() for r in row["regions"] if r["box"])
    assert re.search(rf'<button type="button" data-key="{re.escape(html.escape(label))}" class="off">', dom)
    assert visible(dom) == set(records)  # a toggle hides boxes, not records


def test_colours_never_repeat_with_30_classes(tmp_path):
    colours = distinct(30)
    assert len(set(colours)) == 30 and colours[: len(PALETTE)] == list(PALETTE)
    for red, green, blue in colours:  # no grey: a box never hides in a radiograph's pixels
        assert colorsys.rgb_to_hsv(red / 255, green / 255, blue / 255)[1] >= 0.2
    assert len(set(distinct(200))) == 200
    labels = [f"finding {i:02d}" for i in range(30)]
    row = {"id": "r1", "split": "train", "image_width": 100, "image_height": 80, "image": {},
           "regions": [{"box": [0.1, 0.1, 0.2, 0.2], "label": label, "phrase": label, "reader": None}
                       for label in labels]}
    render_html([panel(row, "vindr")], tmp_path / "page.html", "thirty")
    text = (tmp_path / "page.html").read_text()
    legend = re.findall(r'<button type="button" data-key="([^"]*)"><i class="swatch" style="background:(#\w+)"', text)
    assert sorted(k for k, _ in legend) == labels and len({c for _, c in legend}) == 30
    assert dict(legend) == {k: hex_colour(c) for k, c in assign(labels).items()}


@pytest.fixture(scope="module")
def silver_page(mimic_sample, tmp_path_factory) -> tuple[Path, dict[str, dict]]:
    base = tmp_path_factory.mktemp("gallery-imagenome")
    write_imagenome_sample(base, mimic_root=mimic_sample.root, seed=0)
    build_with("imagenome", base / "out", root=base, mimic_root=mimic_sample.root, image_size=128,
               max_reject_share=1)
    result = invoke("preview", str(base / "out"), "--config", "imagenome-silver", "--n", "100",
                    "--html", str(base / "page.html"))
    assert result.exit_code == 0, result.output
    return base / "page.html", rows_of(base / "out", "imagenome-silver")


def test_silver_sentences_link_to_their_boxes(silver_page, tmp_path):
    page, records = silver_page
    found = figures(page.read_text())
    checked = 0
    for record_id, (_, body) in found.items():
        boxed = [r for r in records[record_id]["regions"] if r["box"] is not None]
        rects = [tuple(float(v) for v in m)
                 for m in re.findall(r'<rect data-i="\d+"[^>]*x="([\d.]+)" y="([\d.]+)"', body)]
        for marks, sentence in re.findall(r'<li data-marks="([\d ]+)">(.*?)</li>', body):
            expected = [(round(r["box"][0], 4), round(r["box"][1], 4)) for r in boxed
                        if r["phrase"] == html.unescape(sentence)]
            assert [rects[int(i)] for i in marks.split()] == pytest.approx(expected, abs=1.5e-4), sentence
            checked += 1
    assert checked >= 5
    record_id, (_, body) = next((i, f) for i, f in found.items() if re.search(r'<li data-marks="\d+ \d', f[1]))
    marks = re.search(r'<li data-marks="([\d ]+)">', body).group(1).split()
    dom = dump_dom(page, tmp_path / "profile", f"pin={record_id}|0")
    attrs, inside = figures(dom)[record_id]
    assert "focus" in attrs
    lit = re.findall(r'<rect data-i="(\d+)"[^>]*class="hl"', inside)
    assert sorted(lit) == sorted(marks) and len(lit) > 1  # a sentence about two regions lights both boxes
    assert re.search(r'<li data-marks="[\d ]+" class="pinned">', inside)
