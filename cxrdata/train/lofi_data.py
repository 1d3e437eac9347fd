"""LoFi's training examples from built shards: image-report pairs and region (grounding / dense caption) pairs.

Sources (recipe ``data.sources``) are configs of one or more build OUTs read with ``datasets``:

* ``task: report``  (mimic): the image, its report text (``report_sections`` joined, else ``report_fallback``)
  for the sigmoid loss, and ``report_prompt`` -> report text for the captioning loss. Rows without text are
  left out (counted as ``no_report_text``). Pairs of one study share a group, so they are not each other's
  negatives.
* ``task: regions`` (ms-cxr ``boxes`` + ``phrase``; padchest-gr, vindr, imagenome-* ``regions``; their
  ``*-lofi-regions`` builds): one grounding or dense-captioning pair per record and epoch
  (:func:`cxrdata.targets.regions.sample_region_pair`, seeded by ``(seed, record id, epoch)``); regions without
  a box or with an unusable box are dropped, rows left without a region are left out (counted as ``no_region``).
* Rows whose image cell is null or empty are left out of every task before anything is decoded (counted as
  ``no_image``); an image that is present but does not decode stops training with one line naming the record.

The order is a pure function of ``(seed, epoch)``: per epoch every source contributes ``round(weight × rows)``
rows (a seeded permutation, repeated when the weight is above 1), then all are shuffled together. Global step
``s`` takes positions ``[s·B, (s+1)·B)`` of its epoch; under DDP rank ``r`` takes its ``B / world`` slice. Resuming
at step ``s`` therefore needs no loader state.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from cxrdata.boxes import check_box
from cxrdata.errors import CxrdataError, Rejected
from cxrdata.io.layout import read_build
from cxrdata.models.inputs import rows_with_image, undecodable
from cxrdata.models.lofi_inputs import TargetSettings, image_prefix, pixel_tensor, prompt_ids, report_text
from cxrdata.targets.regions import sample_region_pair
from cxrdata.train.lofi_losses import IGNORE

TASK_IDS = {"report": 0, "grounding": 1, "dense_caption": 2}


@dataclass(frozen=True)
class SourceSpec:
    config: str
    task: Literal["report", "regions"]
    weight: float = 1.0
    optional: bool = False
    one_reader: bool = False  # keep only the alphabetically first reader's regions (VinDr train: 3 readers)


@dataclass
class SourceData:
    """One source's usable rows: the image column (decoded on access) and per-row metadata."""

    spec: SourceSpec
    images: Any  # datasets.Dataset with the image column
    rows: list[int]  # usable row indices into ``images``
    ids: list[str]
    texts: list[str] = field(default_factory=list)  # report: the report text
    groups: list[str] = field(default_factory=list)  # report: the study
    regions: list[list[dict[str, Any]]] = field(default_factory=list)  # regions: valid {box, phrase}
    sizes: list[tuple[int, int]] = field(default_factory=list)  # regions: original width, height
    left_out: dict[str, int] = field(default_factory=dict)  # reason (no_image, no_report_text, no_region) -> rows

    def __len__(self) -> int:
        return len(self.rows)


def _valid_regions(raw: Sequence[Mapping[str, Any]], one_reader: bool) -> list[dict[str, Any]]:
    regions = []
    for region in raw:
        phrase = " ".join(str(region.get("phrase") or "").split())
        if region.get("box") is None or not phrase:
            continue
        try:
            box, _ = check_box(region["box"])
        except Rejected:
            continue
        regions.append({"box": box, "phrase": phrase, "reader": region.get("reader")})
    if one_reader and regions:
        first = min(str(r["reader"] or "") for r in regions)
        regions = [r for r in regions if str(r["reader"] or "") == first]
    return regions


def load_source(data_dirs: Sequence[str | Path], spec: SourceSpec, split: str, targets: TargetSettings) -> SourceData:
    """Read one source's split; the image column stays lazy (decoded per example)."""
    built = read_build([Path(d) for d in data_dirs], spec.config)
    names = built.columns
    if spec.task == "report":
        wanted = [*targets.report_sections, *targets.report_fallback]
        if not any(c in names for c in wanted):
            raise CxrdataError(f"config {spec.config!r} has no report column for task 'report' (needs one of "
                               f"{', '.join(wanted)}; it has: {', '.join(names)})")
        meta_cols = ["id", *(c for c in wanted if c in names), *(["study_id"] if "study_id" in names else [])]
    else:
        if "regions" in names:
            region_cols = ["regions"]
        elif "boxes" in names and "phrase" in names:
            region_cols = ["boxes", "phrase"]
        else:
            raise CxrdataError(f"config {spec.config!r} has no region columns for task 'regions' (needs 'regions', "
                               f"or 'boxes' + 'phrase'; it has: {', '.join(names)})")
        meta_cols = ["id", "original_width", "original_height", *region_cols]
    ds = built.dataset(split, ["image", *meta_cols])
    meta = ds.select_columns(meta_cols).to_list()
    out = SourceData(spec, ds.select_columns(["image"]), [], [])

    def leave_out(reason: str) -> None:
        out.left_out[reason] = out.left_out.get(reason, 0) + 1

    for i, (row, has_image) in enumerate(zip(meta, rows_with_image(ds), strict=True)):
        if not has_image:  # a row the build stored without an image: counted, never decoded
            leave_out("no_image")
            continue
        if spec.task == "report":
            text = report_text(row, targets)
            if not text:
                leave_out("no_report_text")
                continue
            out.texts.append(text)
            out.groups.append(str(row.get("study_id") or row["id"]))
        else:
            raw = row["regions"] if "regions" in row else [{"box": b, "phrase": row["phrase"]}
                                                               for b in row["boxes"] or []]
            regions = _valid_regions(raw or [], spec.one_reader)
            if not regions:
                leave_out("no_region")
                continue
            out.regions.append(regions)
            out.sizes.append((int(row["original_width"]), int(row["original_height"])))
        out.rows.append(i)
        out.ids.append(str(row["id"]))
    return out


class MixPlan:
    """The deterministic order of (source, item) pairs per epoch (see the module docstring)."""

    def __init__(self, sizes: Sequence[int], weights: Sequence[float], seed: int) -> None:
        self.sizes, self.weights, self.seed = list(sizes), list(weights), seed
        self.counts = [max(1, round(w * n)) if n and w > 0 else 0 for n, w in zip(sizes, weights, strict=True)]
        self.epoch_len = sum(self.counts)

    @lru_cache(maxsize=2)  # noqa: B019 - a plan lives as long as its trainer
    def epoch(self, epoch: int) -> np.ndarray:
        """(epoch_len, 2) array of (source, item)."""
        parts = []
        for s, (n, count) in enumerate(zip(self.sizes, self.counts, strict=True)):
            if not count:
                continue
            rng = np.random.default_rng([self.seed, epoch, s])
            order = np.concatenate([rng.permutation(n) for _ in range(math.ceil(count / n))])[:count]
            parts.append(np.stack([np.full(count, s), order], axis=1))
        both = np.concatenate(parts)
        return both[np.random.default_rng([self.seed, epoch, 1 << 20]).permutation(len(both))]


class LofiExamples(torch.utils.data.Dataset):
    """Example ``(epoch, position)`` of the plan: pixels, task, LM prompt/target, SigLIP text, group."""

    def __init__(self, sources: Sequence[SourceData], plan: MixPlan, targets: TargetSettings, image_size: int,
                 mean: Sequence[float], std: Sequence[float], seed: int) -> None:
        self.sources, self.plan, self.targets = list(sources), plan, targets
        self.image_size, self.mean, self.std, self.seed = image_size, tuple(mean), tuple(std), seed

    def __len__(self) -> int:
        return self.plan.epoch_len

    def __getitem__(self, key: tuple[int, int]) -> dict[str, Any]:
        epoch, position = key
        s, item = (int(v) for v in self.plan.epoch(epoch)[position])
        return self.example(s, item, epoch)

    def example(self, s: int, item: int, epoch: int) -> dict[str, Any]:
        src = self.sources[s]
        try:
            image = src.images[src.rows[item]]["image"]
        except Exception as exc:  # PIL and datasets raise many types for bytes that do not decode
            raise undecodable(src.ids[item], src.spec.config, exc) from None
        out: dict[str, Any] = {"id": src.ids[item], "config": src.spec.config,
                               "pixel_values": pixel_tensor(image, self.image_size, self.mean, self.std)}
        if src.spec.task == "report":
            text = src.texts[item]
            out.update(task="report", prompt=self.targets.report_prompt, target=text, text=text,
                       group=src.groups[item])
        else:
            width, height = src.sizes[item]
            pair = sample_region_pair(src.ids[item], src.regions[item], width, height, self.targets.box_format,
                                      self.seed, epoch, self.targets.p_grounding)
            assert pair is not None  # rows without regions were left out
            out.update(task=pair.task, prompt=pair.prompt, target=pair.target, text=None, group=None)
        return out


class StepBatches(torch.utils.data.Sampler):
    """Per global step, this rank's positions ``(epoch, position)``; from ``start_step`` to ``end_step``."""

    def __init__(self, epoch_len: int, batch_size: int, start_step: int, end_step: int, rank: int = 0,
                 world_size: int = 1) -> None:
        if batch_size % world_size:
            raise CxrdataError(f"batch size {batch_size} is not divisible by the {world_size} processes")
        self.steps_per_epoch = epoch_len // batch_size
        if self.steps_per_epoch < 1:
            raise CxrdataError(f"only {epoch_len} usable examples per epoch, fewer than the batch size {batch_size}")
        self.batch, self.start, self.end = batch_size, start_step, end_step
        self.local = batch_size // world_size
        self.rank = rank

    def __len__(self) -> int:
        return max(0, self.end - self.start)

    def positions(self, step: int) -> list[tuple[int, int]]:
        epoch, j = divmod(step, self.steps_per_epoch)
        first = j * self.batch + self.rank * self.local
        return [(epoch, p) for p in range(first, first + self.local)]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for step in range(self.start, self.end):
            yield self.positions(step)


def group_id(name: str) -> int:
    """A study's id as int64, equal in every process (pairs of one study match across DDP ranks too)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "little", signed=True)


class Collator:
    """Examples -> tensors: pixels, right-padded LM sequences with labels on the target, SigLIP text ids."""

    def __init__(self, tokenizer: Any, text_tokenizer: Any, image_token_id: int, num_image_tokens: int,
                 text_max_length: int, targets: TargetSettings) -> None:
        self.tok, self.text_tok = tokenizer, text_tokenizer
        self.image_token_id, self.num_image_tokens = image_token_id, num_image_tokens
        self.text_max_length, self.targets = text_max_length, targets

    def prompt_ids(self, prompt: str) -> list[int]:
        return prompt_ids(self.tok, prompt, self.targets.max_prompt_tokens)

    def sequence(self, prompt: str, target: str) -> tuple[list[int], list[int]]:
        head = image_prefix(self.tok, self.image_token_id, self.num_image_tokens) + self.prompt_ids(prompt)
        tail = self.tok(target, add_special_tokens=False)["input_ids"]
        # a truncated target gets no eos: the model must not learn to stop where the budget ran out
        tail = tail[: self.targets.max_target_tokens] if len(tail) > self.targets.max_target_tokens else [
            *tail, self.tok.eos_token_id]
        return head + tail, [IGNORE] * len(head) + tail

    def __call__(self, examples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        seqs = [self.sequence(e["prompt"], e["target"]) for e in examples]
        width = max(len(ids) for ids, _ in seqs)
        pad = self.tok.pad_token_id
        input_ids = torch.tensor([ids + [pad] * (width - len(ids)) for ids, _ in seqs])
        labels = torch.tensor([lab + [IGNORE] * (width - len(lab)) for _, lab in seqs])
        attention = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in seqs])
        report = [i for i, e in enumerate(examples) if e["task"] == "report"]
        texts = [examples[i]["text"] for i in report]
        if texts:
            text_ids = torch.tensor(self.text_tok(texts, padding="max_length", truncation=True,
                                                  max_length=self.text_max_length)["input_ids"])
        else:
            text_ids = torch.zeros((0, self.text_max_length), dtype=torch.long)
        groups = [group_id(examples[i]["group"]) for i in report]
        return {
            "pixel_values": torch.stack([e["pixel_values"] for e in examples]),
            "input_ids": input_ids, "labels": labels, "attention_mask": attention,
            "task": torch.tensor([TASK_IDS[e["task"]] for e in examples]),
            "report_rows": torch.tensor(report, dtype=torch.long),
            "text_ids": text_ids,
            "groups": torch.tensor(groups, dtype=torch.long),
            "ids": [e["id"] for e in examples],
        }


def to_device(batch: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
