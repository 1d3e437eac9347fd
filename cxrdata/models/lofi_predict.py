"""``cxrdata predict lofi-boxes``: a LoFi run's boxes for each record's phrase, as a predictions file."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cxrdata.errors import CxrdataError
from cxrdata.io.layout import read_build
from cxrdata.models.lofi_inputs import pixel_tensor, prompt_ids
from cxrdata.models.lofi_run import load_run
from cxrdata.models.prediction_files import BOXES_FORMAT

PHRASE_COLUMNS = ("phrase", "class_name", "prompt", "category")


def predict_boxes(run: str | Path, data: Sequence[Path], config: str, split: str, out: str | Path,
                  phrase_column: str | None = None, batch_size: int = 16, max_new_tokens: int = 64,
                  device: str = "auto", limit: int | None = None) -> dict[str, Any]:
    """Ground each record's phrase with ``Detect all instances of "{phrase}".``, decode the generated box text
    (``text_to_boxes`` in the run's box format) and write the predictions JSON (see :data:`BOXES_FORMAT`)::

        {"format": "cxrdata-boxes/1", "model": "lofi", "run": ..., "checkpoint": ..., "step": N,
         "box_format": "lofi", "config": ..., "split": ..., "phrase_column": "phrase",
         "records": {"<record id>": {"phrase": ..., "text": "<generated>", "boxes": [[x_min, y_min, x_max, y_max]],
                                     "error": null | "<why the text did not parse>"}}}

    Boxes are canonical: normalised to [0, 1] of the original image (``original_width`` x ``original_height``).
    """
    import torch

    from cxrdata.targets.box_text import BoxTextError, text_to_boxes
    from cxrdata.targets.regions import GROUNDING_PROMPT

    loaded = load_run(run, device)
    recipe, model = loaded.recipe, loaded.model
    built = read_build(data, config)
    names = built.columns
    column = phrase_column or next((c for c in PHRASE_COLUMNS if c in names), None)
    if column is None or column not in names:
        tried = phrase_column or ", ".join(PHRASE_COLUMNS)
        raise CxrdataError(f"config {config!r} has no phrase column to ground (tried {tried})")
    ds = built.dataset(split, ["id", "image", "original_width", "original_height", column])
    count = len(ds) if limit is None else min(limit, len(ds))
    targets, m = loaded.targets, recipe["model"]
    fmt = targets.box_format
    records: dict[str, Any] = {}
    for first in range(0, count, batch_size):
        cols = ds[first:min(first + batch_size, count)]  # slicing decodes the images
        rows = [dict(zip(cols, values, strict=True)) for values in zip(*cols.values(), strict=True)]
        pixels = torch.stack([pixel_tensor(r["image"], m["image_size"], m["image_mean"], m["image_std"]) for r in rows])
        prompts = [GROUNDING_PROMPT.format(phrase=" ".join(str(r[column] or "").split())) for r in rows]
        with torch.autocast(loaded.device.type, dtype=torch.bfloat16, enabled=loaded.device.type == "cuda"):
            generated = model.generate(pixels.to(loaded.device),
                                       [prompt_ids(model.tokenizer, p, targets.max_prompt_tokens) for p in prompts],
                                       max_new_tokens)
        for row, prompt, ids in zip(rows, prompts, generated, strict=True):
            text = model.tokenizer.decode(ids, skip_special_tokens=True)
            try:
                boxes, error = text_to_boxes(text, int(row["original_width"]), int(row["original_height"]), fmt), None
            except BoxTextError as exc:
                boxes, error = [], str(exc)
            records[str(row["id"])] = {"phrase": row[column], "prompt": prompt, "text": text,
                                       "boxes": [[round(float(v), 6) for v in b] for b in boxes], "error": error}
    doc = {"format": BOXES_FORMAT, "model": "lofi", "run": str(Path(run).resolve()),
           "checkpoint": loaded.checkpoint.name,
           "step": loaded.step, "box_format": fmt, "config": config, "split": split, "phrase_column": column,
           "records": records}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1) + "\n")
    return doc
