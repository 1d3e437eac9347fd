"""`cxrdata preview`: the PNG grid (size, panels, boxes and Gaussians where the records say) and the HTML page
(self-contained; every record's prompt/phrase rendered by headless Chromium); same seed, same records."""

from __future__ import annotations

import base64
import html
import io
import math
import re
import subprocess
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from cxrdata_testing import CHROMIUM_FLAGS, build_with, chromium, dump_dom
from PIL import Image

from cxrdata.anatomy.lut import build_lut, write_lut
from cxrdata.api import bundled_root
from cxrdata.cli import main
from cxrdata.inspect.colours import assign
from cxrdata.inspect.preview import BACKGROUND, CAPTION_HEIGHT, CELL, GAP, LINE, PANEL_FILL
from cxrdata.inspect.records import choose_panels
from cxrdata.sample.chest import anatomy_boxes


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def rows_of(out: Path, config: str) -> dict[str, dict]:
    return {row["id"]: row for path in sorted((out / "data" / config).glob("*.parquet"))
            for row in pq.read_table(path).to_pylist()}


@pytest.fixture(scope="module")
def loc_out(mimic_sample, tmp_path_factory) -> Path:
    """MS-CXR-loc: prompts, phrases, boxes and LUT Gaussians on 300 px images."""
    root = tmp_path_factory.mktemp("preview-loc")
    boxes = [item for w, h in ((512, 512), (400, 500)) for item in anatomy_boxes(w, h).items()]
    write_lut(build_lut(boxes), root / "lut.json")
    result = invoke("build", "ms-cxr", "--root", str(mimic_sample.mscxr_csv["1.1.0"].parent), "--mimic-root",
                    str(mimic_sample.root), "--recipe", "ms-cxr-loc", "--extractor", "rules", "--lut",
                    str(root / "lut.json"), "--image-size", "300", "--out", str(root / "out"), "--workers", "1",
                    "--quiet")
    assert result.exit_code == 0, result.output
    return root / "out"


@pytest.fixture(scope="module")
def vindr_path_out(tmp_path_factory) -> Path:
    """VinDr-CXR in path mode: the preview must decode the referenced DICOMs itself."""
    out = tmp_path_factory.mktemp("preview-vindr") / "out"
    build_with("vindr", out, root=bundled_root("vindr"), image_format="path", max_reject_share=1)
    return out


def grid(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) of the runs of True in a 1-D mask."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return list(zip(edges[::2], edges[1::2], strict=True))


def panel_boxes(pixels: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Panels found on the canvas: columns and rows that are not entirely background, cut by background gaps."""
    is_background = np.all(pixels == BACKGROUND, axis=2)
    found = []
    for y0, y1 in runs(~is_background.all(axis=1)):
        for x0, x1 in runs(~is_background[y0:y1].all(axis=0)):
            found.append((x0, y0, x1, y1))
    return found


def expected_origin(i: int, n: int) -> tuple[int, int]:
    columns = math.ceil(math.sqrt(n))
    row, column = divmod(i, columns)
    return GAP + column * (CELL + GAP), GAP + row * (CELL + CAPTION_HEIGHT + GAP)


def near(pixels: np.ndarray, x: int, y: int, colour: tuple[int, int, int], radius: int = 1) -> bool:
    patch = pixels[max(y - radius, 0): y + radius + 1, max(x - radius, 0): x + radius + 1]
    return bool(np.any(np.all(patch == colour, axis=2)))


def test_grid_size_and_panels(loc_out, tmp_path):
    result = invoke("preview", str(loc_out), "--n", "7", "--seed", "3", "--out", str(tmp_path / "grid.png"))
    assert result.exit_code == 0, result.output
    pixels = grid(tmp_path / "grid.png")
    columns, rows = 3, 3  # ceil(sqrt(7)) columns, ceil(7 / 3) rows
    assert pixels.shape[1] == GAP + columns * (CELL + GAP)
    assert pixels.shape[0] >= GAP + rows * (CELL + CAPTION_HEIGHT + GAP)
    found = panel_boxes(pixels[: GAP + rows * (CELL + CAPTION_HEIGHT + GAP)])
    assert len(found) == 7
    assert [(x0, y0) for x0, y0, _, _ in found] == [expected_origin(i, 7) for i in range(7)]
    assert all((x1 - x0, y1 - y0) == (CELL, CELL + CAPTION_HEIGHT) for x0, y0, x1, y1 in found)
    assert "7 of 27 records" in result.output


def test_boxes_and_gaussians_land_where_the_records_say(loc_out, tmp_path):
    chosen = choose_panels(loc_out, 9, seed=1)
    from cxrdata.inspect.preview import render_grid

    render_grid(chosen.panels, tmp_path / "grid.png")
    pixels = grid(tmp_path / "grid.png")
    records = rows_of(loc_out, "ms-cxr-loc")
    colours = assign((m.key for p in chosen.panels for m in p.marks), (b.key for p in chosen.panels for b in p.blobs))
    checked_boxes = checked_blobs = 0
    for i, panel in enumerate(chosen.panels):
        row = records[panel.id]
        width, height = row["image_width"], row["image_height"]  # the STORED size (300 px longest side)
        assert max(width, height) == 300 and (width, height) != (row["original_width"], row["original_height"])
        scale = min(CELL / width, CELL / height)
        ox, oy = expected_origin(i, 9)
        ox += (CELL - round(width * scale)) // 2
        oy += (CELL - round(height * scale)) // 2
        box = row["boxes"][-1]  # drawn last: nothing covers it
        colour = colours[row["pathology"]]
        left, top = ox + round(box[0] * width * scale), oy + round(box[1] * height * scale)
        right, bottom = ox + round(box[2] * width * scale), oy + round(box[3] * height * scale)
        middle_x, middle_y = (left + right) // 2, (top + bottom) // 2
        assert near(pixels, middle_x, top + LINE // 2, colour), (panel.id, "top edge")
        assert near(pixels, left + LINE // 2, middle_y, colour), (panel.id, "left edge")
        assert not near(pixels, middle_x, top - 4 * LINE, colour, radius=0)  # the edge is there, not 12 px above
        checked_boxes += 1
        for location, components in zip(row["locations"], row["gaussians"], strict=True):
            grid_side = row["lut_grid"]
            for mu_x, mu_y, sigma_x, sigma_y in components:
                cx, cy = ox + mu_x / grid_side * width * scale, oy + mu_y / grid_side * height * scale
                rx, ry = sigma_x / grid_side * width * scale, sigma_y / grid_side * height * scale
                extremes = [(round(cx), round(cy - ry)), (round(cx), round(cy + ry)),  # the 1σ ellipse's extremes
                            (round(cx - rx), round(cy)), (round(cx + rx), round(cy))]
                hits = sum(near(pixels, x, y, colours[location], radius=2) for x, y in extremes)
                checked_blobs += hits >= 3  # a box drawn over the ellipse may hide one extreme
    assert checked_boxes == 9 and checked_blobs >= 9


def test_same_seed_same_records_and_where(loc_out):
    first = [p.id for p in choose_panels(loc_out, 5, seed=0).panels]
    assert first == [p.id for p in choose_panels(loc_out, 5, seed=0).panels]
    assert first != [p.id for p in choose_panels(loc_out, 5, seed=1).panels]
    records = rows_of(loc_out, "ms-cxr-loc")
    test_ids = sorted(i for i, r in records.items() if r["split"] == "test")
    for where in ("split == test", "split = 'test'"):
        chosen = choose_panels(loc_out, 50, where=where)
        assert chosen.matched == len(test_ids) and [p.id for p in chosen.panels] == test_ids
    several = choose_panels(loc_out, 50, where="array_length(boxes) > 1 AND pathology <> 'Edema'")
    assert [p.id for p in several.panels] == sorted(i for i, r in records.items()
                                                     if len(r["boxes"]) > 1 and r["pathology"] != "Edema")


def test_where_errors_are_one_line(loc_out, tmp_path):
    result = invoke("preview", str(loc_out), "--where", "nope == 1", "--out", str(tmp_path / "g.png"))
    assert result.exit_code == 2 and "unable to find column" in result.output and "pathology" in result.output
    result = invoke("preview", str(loc_out), "--out", str(tmp_path / "g.png"), "--where", "split == nowhere")
    assert result.exit_code == 2 and "no record" in result.output
    assert invoke("preview", str(loc_out)).exit_code == 2  # neither --out nor --html


def test_path_mode_reads_the_referenced_dicoms(vindr_path_out, tmp_path):
    records = rows_of(vindr_path_out, "vindr")
    assert all(isinstance(r["image"], str) and Path(r["image"]).is_absolute() for r in records.values())
    result = invoke("preview", str(vindr_path_out), "--n", "4", "--where", "array_length(regions) > 0",
                    "--out", str(tmp_path / "grid.png"))
    assert result.exit_code == 0, result.output
    pixels = grid(tmp_path / "grid.png")
    chosen = choose_panels(vindr_path_out, 4, where="array_length(regions) > 0")
    colours = assign(m.key for p in chosen.panels for m in p.marks)
    assert {m.key for p in chosen.panels for m in p.marks} <= {f"R{i}" for i in range(1, 18)} | {"consensus"}
    for i, panel in enumerate(chosen.panels):
        x, y = expected_origin(i, 4)
        area = pixels[y: y + CELL, x: x + CELL]
        assert area.std() > 10 and not np.all(area[CELL // 2, CELL // 2] == PANEL_FILL)  # the decoded radiograph
        row = records[panel.id]
        width, height = row["image_width"], row["image_height"]  # path mode: stored size = original
        scale = min(CELL / width, CELL / height)
        region = row["regions"][-1]
        ox, oy = x + (CELL - round(width * scale)) // 2, y + (CELL - round(height * scale)) // 2
        top = oy + round(region["box"][1] * height * scale)
        middle_x = ox + round((region["box"][0] + region["box"][2]) / 2 * width * scale)
        assert near(pixels, middle_x, top + LINE // 2, colours[region["reader"]]), panel.id


def test_html_is_self_contained_and_chromium_shows_every_prompt(loc_out, tmp_path):
    page = tmp_path / "page.html"
    result = invoke("preview", str(loc_out), "--n", "100", "--html", str(page))
    assert result.exit_code == 0, result.output
    text = page.read_text()
    records = rows_of(loc_out, "ms-cxr-loc")
    assert text.count("<figure") == len(records) == 27
    assert text.count("<rect") == sum(len(r["boxes"]) for r in records.values())
    assert text.count("<ellipse") == 2 * sum(len(c) for r in records.values() for c in r["gaussians"])
    sources = re.findall(r'(?:src|href)="([^"]*)"', text)
    assert sources and all(s.startswith("data:image/jpeg;base64,") for s in sources)  # nothing fetched from anywhere
    assert "<script src" not in text and "url(" not in text and not re.search(r"https?://", text)

    profile = tmp_path / "chromium-profile"
    dom = dump_dom(page, profile)
    assert dom.count("<figure") == 27
    for record in records.values():
        for needle in (record["prompt"], f"phrase: {record['phrase']}", record["id"]):
            assert html.escape(needle, quote=False) in dom, needle
    shot = tmp_path / "shot.png"
    subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--window-size=1000,800",
                    f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120, check=True)
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.shape[:2] == (800, 1000) and pixels.std() > 10  # rendered images, not a blank page


def _layer_images(text: str, kind: str) -> dict[str, tuple[np.ndarray, tuple[float, ...]]]:
    """record id -> (RGBA pixels, (left, top, width, height) in %) of every layer of ``kind`` on the page."""
    found = {}
    for record_id, body in re.findall(r'<figure data-id="([^"]*)"(.*?)</figure>', text, flags=re.S):
        match = re.search(rf'<img class="layer {kind}"[^>]*src="data:image/png;base64,([^"]*)" '
                          r'style="left:([\d.]+)%;top:([\d.]+)%;width:([\d.]+)%;height:([\d.]+)%"', body)
        if match:
            pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(match.group(1)))).convert("RGBA"))
            found[html.unescape(record_id)] = (pixels, tuple(float(v) for v in match.groups()[1:]))
    return found


def test_lut_and_model_heatmap_layers(loc_out, tmp_path):
    from cxrdata.anatomy.lut import read_lut
    from cxrdata.models.prediction_files import write_heatmap

    lut = read_lut(loc_out.parent / "lut.json")
    records = rows_of(loc_out, "ms-cxr-loc")
    located = {i for i, r in records.items() if set(r["locations"] or []) & set(lut.terms)}
    assert len(located) > 0
    heat_ids = sorted(records)[:3]
    for record_id in heat_ids:  # a model heatmap whose only peak is its top-left cell
        heat = np.zeros((32, 32), np.float32)
        heat[0, 0] = 5.0
        write_heatmap(tmp_path / "heat", record_id, heat)
    page = tmp_path / "page.html"
    result = invoke("preview", str(loc_out), "--n", "100", "--html", str(page),
                    "--lut", str(loc_out.parent / "lut.json"), "--heatmaps", str(tmp_path / "heat"))
    assert result.exit_code == 0, result.output
    assert f"lut layer: {len(located)} of 27 records" in result.output and "heatmap layer: 3 of 27" in result.output
    text = page.read_text()
    luts, heats = _layer_images(text, "lut"), _layer_images(text, "heatmap")
    assert set(luts) == located and set(heats) == set(heat_ids)
    for record_id, (pixels, place) in luts.items():  # stretched over the image; brightest where a Gaussian peaks
        row = records[record_id]
        assert place == (0.0, 0.0, 100.0, 100.0)
        height, width = pixels.shape[:2]
        peaks = [(mu_y / lut.grid * height, mu_x / lut.grid * width) for term in row["locations"] if term in lut.terms
                 for mu_x, mu_y, _, _ in lut.params(term)]
        y, x = np.unravel_index(np.argmax(pixels[..., 3]), pixels.shape[:2])
        assert min(math.hypot(y - py, x - px) for py, px in peaks) <= 2.5, record_id
    for record_id, (pixels, place) in heats.items():  # the centred min(W, H) square, peak in its top-left corner
        width, height = records[record_id]["image_width"], records[record_id]["image_height"]
        side = min(width, height)
        assert place == pytest.approx((100 * (width - side) / 2 / width, 100 * (height - side) / 2 / height,
                                       100 * side / width, 100 * side / height), abs=1e-3)
        assert np.unravel_index(np.argmax(pixels[..., 3]), pixels.shape[:2]) == (0, 0)
        assert pixels[-1, -1, 3] == 0  # where the map is 0, the radiograph shows through
    dom = dump_dom(page, tmp_path / "profile", "lut=0")
    assert re.search(r'<body class="([^"]*)"', dom).group(1).split() == ["no-lut"]  # the heatmaps still show


def test_heatmaps_folder_without_a_match_is_one_line(loc_out, tmp_path):
    (tmp_path / "heat").mkdir()
    result = invoke("preview", str(loc_out), "--html", str(tmp_path / "p.html"), "--heatmaps", str(tmp_path / "heat"))
    assert result.exit_code == 2 and "no heatmap in" in result.output and not (tmp_path / "p.html").exists()
    result = invoke("preview", str(loc_out), "--out", str(tmp_path / "g.png"), "--heatmaps", str(tmp_path / "heat"))
    assert result.exit_code == 2 and "layers of the HTML gallery" in result.output
