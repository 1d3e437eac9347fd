"""``cxrdata eval retrieval``: image->text and text->image Recall@K of a trained LoFi run over one split.

Candidates: every image of the split that has a report text (``report_sections`` of the run's recipe, else its
fallback) and a stored image (a null image cell is left out), and one text per study (all images of a study
share its report; without ``study_id`` one per record).
Image->text: a query image hits at K when its study's text ranks in the top K of all texts. Text->image: a
query text hits when any image of its study ranks in the top K of all images. Similarities are cosines of the
SigLIP embeddings (the pooled image embedding and the text tower's). Ties rank by candidate order (stable sort).
LoFi reports R@1 13.9 (image->text) / 11.9 (text->image) on the full MIMIC-CXR test split.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from cxrdata.errors import CxrdataError
from cxrdata.io.layout import read_build

KS = (1, 5, 10)


def recall_at_k(similarity: ArrayLike, positives: ArrayLike, ks: Sequence[int] = KS) -> dict[int, float]:
    """Fraction of queries (rows) with at least one positive candidate (column) among their top-K by similarity.

    ``positives`` is a boolean matrix of the same shape; every query needs at least one positive. Ties are
    broken by candidate index (stable sort of the negated similarity). K above the number of candidates counts
    every candidate.
    """
    sim = np.asarray(similarity, dtype=np.float64)
    pos = np.asarray(positives, dtype=bool)
    if sim.ndim != 2 or sim.shape != pos.shape:
        raise ValueError(f"similarity {sim.shape} and positives {pos.shape} must be matrices of one shape")
    if sim.shape[0] and not pos.any(axis=1).all():
        raise ValueError("every query needs at least one positive candidate")
    order = np.argsort(-sim, axis=1, kind="stable")
    ranked = np.take_along_axis(pos, order, axis=1)
    first = ranked.argmax(axis=1)  # 0-based rank of the best-ranked positive
    return {k: float((first < k).mean()) if len(first) else float("nan") for k in ks}


@dataclass
class RetrievalResult:
    image_to_text: dict[int, float]
    text_to_image: dict[int, float]
    n_images: int  # image queries = image candidates of text->image
    n_texts: int  # text queries = text candidates of image->text


def retrieval_metrics(similarity: ArrayLike, image_groups: Sequence[Any], text_groups: Sequence[Any],
                      ks: Sequence[int] = KS) -> RetrievalResult:
    """Both directions from an (images x texts) similarity matrix and each side's group (study) ids."""
    sim = np.asarray(similarity, dtype=np.float64)
    positives = np.asarray(image_groups, dtype=object)[:, None] == np.asarray(text_groups, dtype=object)[None, :]
    return RetrievalResult(recall_at_k(sim, positives, ks), recall_at_k(sim.T, positives.T, ks),
                           sim.shape[0], sim.shape[1])


@dataclass
class RetrievalReport:
    run: str
    checkpoint: str
    step: int
    config: str
    split: str
    result: RetrievalResult
    left_out: int  # rows without a report text or without an image


def evaluate_retrieval(run: str | Path, data: Sequence[str | Path], split: str = "test", config: str = "mimic",
                       batch_size: int = 32, device: str = "auto", limit: int | None = None) -> RetrievalReport:
    """Embed the split's images and report texts with the run's SigLIP towers and score both directions."""
    from cxrdata.models.inputs import rows_with_image
    from cxrdata.models.lofi_encode import image_embeddings, text_embeddings
    from cxrdata.models.lofi_inputs import report_text
    from cxrdata.models.lofi_run import load_run

    built = read_build([Path(d) for d in data], config)
    loaded = load_run(run, device)
    targets = loaded.targets
    names = built.columns
    text_cols = [c for c in (*targets.report_sections, *targets.report_fallback) if c in names]
    if not text_cols:
        raise CxrdataError(f"config {config!r} has no report text column ({', '.join(targets.report_sections)})")
    group_col = ["study_id"] if "study_id" in names else []
    ds = built.dataset(split, ["id", "image", *text_cols, *group_col])
    meta = ds.select_columns(["id", *text_cols, *group_col]).to_list()
    keep, image_groups, texts = [], [], {}
    for i, (row, has_image) in enumerate(zip(meta[: limit or len(meta)], rows_with_image(ds), strict=False)):
        text = report_text(row, targets)
        if not text or not has_image:
            continue
        group = str(row["study_id"]) if group_col else str(row["id"])
        keep.append(i)
        image_groups.append(group)
        texts.setdefault(group, text)
    if not keep:
        raise CxrdataError(f"config {config!r} split {split!r}: no image with a report text")
    images = ds.select_columns(["image"])
    image_batches = (images.select(keep[first:first + batch_size])["image"]
                     for first in range(0, len(keep), batch_size))
    text_groups = list(texts)
    image_emb = image_embeddings(loaded, image_batches)
    text_emb = text_embeddings(loaded, [texts[g] for g in text_groups], batch_size)
    result = retrieval_metrics(image_emb @ text_emb.T, image_groups, text_groups)
    return RetrievalReport(str(Path(run)), loaded.checkpoint.name, loaded.step, config, split, result,
                           (min(limit, len(meta)) if limit else len(meta)) - len(keep))


def report_lines(report: RetrievalReport) -> list[str]:
    r = report.result
    fmt = ", ".join
    return [
        f"retrieval on {report.config} {report.split}, run {report.run} ({report.checkpoint}, step {report.step})",
        f"image->text over {r.n_texts} candidate texts ({r.n_images} image queries): "
        + fmt(f"R@{k} {100 * v:.1f}" for k, v in r.image_to_text.items()),
        f"text->image over {r.n_images} candidate images ({r.n_texts} text queries): "
        + fmt(f"R@{k} {100 * v:.1f}" for k, v in r.text_to_image.items()),
        f"({report.left_out} rows without a report text or an image left out; LoFi reports R@1 13.9 / 11.9 on the full "
        "MIMIC-CXR test split)",
    ]


def write_report(report: RetrievalReport, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = asdict(report)
    for key in ("image_to_text", "text_to_image"):
        doc["result"][key] = {f"R@{k}": v for k, v in doc["result"][key].items()}
    path.write_text(json.dumps(doc, indent=1) + "\n")
    return path
