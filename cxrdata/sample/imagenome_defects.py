"""The deliberate defects of the synthetic Chest ImaGenome sample (what ``faults=True`` and the default
sample plant): gold box rows repeated, in conflict or with an unsafe id; gold attribute rows repeated, in
conflict or without their sentence; three broken silver boxes; a damaged member of the scene-graph zip.
Each planter changes the rows or file it is given in place and records fault -> dicom_id in ``planted``."""

from __future__ import annotations

import zipfile
from pathlib import Path

from cxrdata.boxes import Letterbox
from cxrdata.sample.imagenome_graphs import object_from_pixels
from cxrdata.sample.imagenome_plan import FrontalImage, csv_float

UNREADABLE_GRAPHS = ("scene_graph_directory", "scene_graph_unreadable", "scene_graph_corrupt_member")


def plant_gold_box_faults(rows: list[list[str]], gold: list[FrontalImage], planted: dict[str, str]) -> None:
    """A verbatim repeat, a repeat with other coordinates (a conflict), and an unsafe image_id."""
    repeated, conflicting = gold[0].dicom_id, gold[1].dicom_id
    planted.update(gold_box_row_duplicate=repeated, gold_box_conflict=conflicting, gold_bad_id="../evil")
    at = next(k for k, r in enumerate(rows) if r[0] == f"{repeated}.dcm")
    rows.insert(at + 1, list(rows[at]))
    at = next(k for k, r in enumerate(rows) if r[0] == f"{conflicting}.dcm" and r[7] == "trachea")
    moved = list(rows[at])
    moved[9] = csv_float(float(moved[9]) + 7.0)  # original_x1
    rows.insert(at + 1, moved)
    rows.append(["../evil.dcm", *rows[at][1:]])


def plant_attribute_faults(rows: list[list[str]], planted: dict[str, str]) -> None:
    """A verbatim repeat, the same (sentence, bbox, attribute) with the opposite context, a missing sentence."""
    rows.insert(1, list(rows[0]))  # a verbatim repeat
    flipped = list(rows[2])
    flipped[5], flipped[8] = ("0", "no") if flipped[8] == "yes" else ("1", "yes")
    rows.insert(3, flipped)  # the same (sentence, bbox, attribute) with the opposite context
    rows[-1][9] = ""  # a row whose sentence is missing
    planted.update(attribute_row_duplicate=rows[0][2].removesuffix(".dcm"),
                   attribute_conflict=rows[2][2].removesuffix(".dcm"),
                   attribute_sentence_missing=rows[-1][2].removesuffix(".dcm"))


def break_boxes(graph: dict, im: FrontalImage) -> dict[str, tuple[str, str]]:
    """Plant the three silver box defects in one scene graph, keeping 224 and original consistent."""
    lb = Letterbox.fit(im.width, im.height, 224)
    by_name = {obj["bbox_name"]: k for k, obj in enumerate(graph["objects"])}
    plans = {
        "negative": ("right clavicle", lambda b: (-round(0.05 * im.width), b[1], b[2], b[3])),
        "zero_area": ("carina", lambda b: (b[0], b[1], b[0], b[3])),
        "out_of_bounds": ("left costophrenic angle", lambda b: (b[0], b[1], round(1.25 * im.width), b[3])),
    }
    found = {}
    for defect, (name, change) in plans.items():
        obj = graph["objects"][by_name[name]]
        pixels = (obj["original_x1"], obj["original_y1"], obj["original_x2"], obj["original_y2"])
        graph["objects"][by_name[name]] = object_from_pixels(im, name, change(pixels), lb)
        found[defect] = (im.dicom_id, name)
    return found


def damage_member(archive: Path, member: str) -> None:
    """Flip bytes in the middle of one member's compressed data (its CRC or inflate then fails)."""
    with zipfile.ZipFile(archive) as zf:
        info = zf.getinfo(member)
    data = bytearray(archive.read_bytes())
    name_length = int.from_bytes(data[info.header_offset + 26 : info.header_offset + 28], "little")
    extra_length = int.from_bytes(data[info.header_offset + 28 : info.header_offset + 30], "little")
    start = info.header_offset + 30 + name_length + extra_length
    for k in range(start + info.compress_size // 2, start + info.compress_size // 2 + 8):
        data[k] ^= 0xFF
    archive.write_bytes(bytes(data))
