"""A record's conversations for one task: its positives, and the negatives the sampler keeps.

Positives: grounding and dense captioning one per phrase (all its boxes together); report one per record;
vqa one "yes" per finding present and one location question per finding with location terms. Negatives
(grounding, vqa): one per finding the record says is absent (:mod:`cxrdata.export.findings`), kept when
``unit(seed, record, finding) < p``, where the driver sets ``p`` so that the negatives make up the share
asked for (:func:`keep_probability`). Everything depends only on the seed and the record.
"""

from __future__ import annotations

from dataclasses import dataclass

from cxrdata.boxes import Box
from cxrdata.export.records import RecordFacts
from cxrdata.export.templates import Template, pick, unit
from cxrdata.targets.box_text import BoxFormat, boxes_to_text, with_object_ref

TASKS = ("grounding", "dense-caption", "report", "vqa")
NEGATIVE_TASKS = ("grounding", "vqa")


@dataclass(frozen=True)
class Example:
    """One single-turn conversation: the user's prompt (after the image) and the assistant's answer."""

    task: str  # a template group: grounding, dense-caption, report, vqa, vqa-location
    prompt: str
    answer: str
    template_id: str
    answer_template_id: str
    negative: bool = False


@dataclass(frozen=True)
class Renderer:
    """Renders examples of one record with the export's templates, box format and seed."""

    templates: dict[str, dict[str, tuple[Template, ...]]]
    box_format: BoxFormat
    seed: int

    def _example(self, group: str, facts: RecordFacts, key: str, values: dict[str, str],
                 negative: bool = False) -> Example:
        slots = self.templates[group]
        prompt = pick(slots["prompt"], self.seed, facts.record_id, group, key, "prompt")
        answer = pick(slots["negative_answer" if negative else "answer"], self.seed, facts.record_id, group, key,
                      "answer")
        return Example(group, prompt.render(**values), answer.render(**values), prompt.id, answer.id, negative)

    def box_text(self, boxes: list[Box], size: tuple[int, int]) -> str:
        return boxes_to_text(boxes, size[0], size[1], self.box_format)

    def positives(self, task: str, facts: RecordFacts, size: tuple[int, int]) -> list[Example]:
        """``size``: the (width, height) the box format measures boxes on (see :func:`box_size`)."""
        if task == "grounding":
            out = []
            for phrase, boxes in facts.groups:
                text = self.box_text(boxes, size)
                if self.box_format == "qwen2vl":
                    text = with_object_ref(phrase, text)
                out.append(self._example(task, facts, phrase, {"phrase": phrase, "boxes": text}))
            return out
        if task == "dense-caption":
            return [self._example(task, facts, phrase, {"phrase": phrase, "boxes": self.box_text(boxes, size)})
                    for phrase, boxes in facts.groups]
        if task == "report":
            return [self._example(task, facts, "report", {"report": facts.report})] if facts.report else []
        if task == "vqa":
            yes = [self._example(task, facts, f, {"finding": f}) for f in facts.findings.present]
            where = [self._example("vqa-location", facts, f, {"finding": f, "location": " and ".join(terms)})
                     for f, terms in facts.locations]
            return yes + where
        raise ValueError(f"unknown task {task!r}")

    def negative(self, task: str, facts: RecordFacts, finding: str) -> Example:
        values = {"finding": finding, "phrase": finding}
        return self._example(task, facts, f"absent:{finding}", values, negative=True)


def candidates(task: str, facts: RecordFacts) -> list[str]:
    """The findings a negative of ``task`` may be drawn from for this record."""
    return list(facts.findings.absent) if task in NEGATIVE_TASKS else []


def kept(seed: int, facts: RecordFacts, finding: str, probability: float) -> bool:
    return unit(seed, facts.record_id, "negative", finding) < probability


def keep_probability(share: float, positives: int, candidates_total: int) -> float:
    """p such that p x candidates ~ share x (positives + negatives), capped at 1 (every candidate)."""
    if share <= 0 or candidates_total == 0:
        return 0.0
    wanted = share * positives / (1 - share) if positives else float(candidates_total)
    return min(1.0, wanted / candidates_total)


def box_size(box_format: BoxFormat, row: dict) -> tuple[int, int]:
    """The image size boxes are written on: the stored image for qwen25vl (its processor resizes the image
    it is fed), the original image for every other format (they are relative to the whole image)."""
    if box_format == "qwen25vl":
        return int(row["image_width"]), int(row["image_height"])
    return int(row["original_width"]), int(row["original_height"])
