"""The labelled language corpus (tests/data/language_corpus/*.yaml) and the two paths that run it.

Each YAML file is a list of entries written by us in MIMIC-CXR style (see the corpus README). An entry is
one sentence (``text``) or one short report (``findings`` / ``impression`` / ``last_paragraph``), the
class it exercises, ``expect`` (pathology -> expected prompt or drop reason), ``anatomy`` (the phrases
RadGraph-XL would tag ``Anatomy::definitely present``, in text order) and optional known failures
``xfail: {rules: why, radgraph: why}``.

Both paths call the real public function :func:`cxrdata.targets.locate.locate_report`:

- ``rules``: with :class:`cxrdata.extract.rules.RuleExtractor`;
- ``radgraph``: with :class:`AnnotatedRadGraph`, which returns the hand-written anatomy in radgraph's own
  output format read back by the backend's :func:`cxrdata.extract.radgraph.entities_from_annotation`, so
  the location mapper sees exactly what the RadGraph backend would hand it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import yaml

from cxrdata.extract.base import Entity, Extractor
from cxrdata.extract.radgraph import entities_from_annotation
from cxrdata.extract.rules import RuleExtractor
from cxrdata.targets.locate import locate_report
from cxrdata.text.sentences import split_sentences
from cxrdata.text.tokens import tokenize

CORPUS_DIR = Path(__file__).parent / "data" / "language_corpus"
SECTIONS = ("findings", "impression", "last_paragraph")
PATHS = ("rules", "radgraph")
ANATOMY_LABEL = "Anatomy::definitely present"
DROP_REASONS = ("no_sentence", "negated", "uncertain", "no_location")


class CorpusError(ValueError):
    """A corpus entry that cannot be read as written (a typo in the data, not a failure of the rules)."""


@dataclass(frozen=True)
class Case:
    """One (entry, pathology) pair: what one parametrised test asserts."""

    id: str
    kind: str  # "sentence" or "report"
    cls: str
    sections: dict[str, str]
    pathology: str
    expected: str
    anatomy: tuple[str, ...]
    xfail: dict[str, str] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return "\n\n".join(self.sections.values())


def _entries(path: Path) -> Iterator[tuple[str, dict]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, list):
        raise CorpusError(f"{path.name}: expected a list of entries")
    for i, entry in enumerate(data, 1):
        yield f"{path.stem}:{i}", entry


def _case_list(entry_id: str, entry: dict) -> list[Case]:
    sections = {name: entry[name] for name in SECTIONS if entry.get(name)}
    if "text" in entry:
        if sections:
            raise CorpusError(f"{entry_id}: give text or report sections, not both")
        sections, kind = {"findings": entry["text"]}, "sentence"
    elif sections:
        kind = "report"
    else:
        raise CorpusError(f"{entry_id}: no text")
    unknown = set(entry) - {"text", *SECTIONS, "class", "expect", "anatomy", "xfail", "note"}
    if unknown or not entry.get("class") or not isinstance(entry.get("expect"), dict):
        raise CorpusError(f"{entry_id}: needs class and expect (unknown keys: {sorted(unknown)})")
    xfail = entry.get("xfail") or {}
    if set(xfail) - set(PATHS):
        raise CorpusError(f"{entry_id}: xfail keys must be among {PATHS}")
    anatomy = tuple(entry.get("anatomy") or ())
    return [
        Case(f"{entry_id}:{pathology}", kind, str(entry["class"]), sections, pathology, str(expected), anatomy,
             dict(xfail))
        for pathology, expected in entry["expect"].items()
    ]


@cache
def load_cases(directory: Path = CORPUS_DIR) -> tuple[Case, ...]:
    """Every case of every corpus file, in file and entry order."""
    cases = [c for path in sorted(directory.glob("*.yaml")) for i, e in _entries(path) for c in _case_list(i, e)]
    if not cases:
        raise CorpusError(f"no corpus entries under {directory}")
    return tuple(cases)


def _phrase_tokens(phrase: str) -> list[str]:
    return [t.text.lower() for t in tokenize(phrase)]


def annotate(sentences: Sequence[str], anatomy: Sequence[str]) -> dict[str, dict]:
    """RadGraph-format output (``{"text", "entities"}``) per sentence, from anatomy phrases in text order.

    RadGraph labels anatomy word by word, so each token of a phrase is one entity. A sentence that occurs
    twice (an impression repeating a finding) is annotated once, at its first occurrence. A phrase is
    looked up from where the previous one ended, in the current sentence first and then in the following
    ones; a phrase found nowhere is a :class:`CorpusError`.
    """
    sentences = list(dict.fromkeys(sentences))
    out = {s: {"text": s, "entities": {}} for s in sentences}
    position, cursor = 0, 0
    for phrase in anatomy:
        words = _phrase_tokens(phrase)
        while position < len(sentences):
            tokens = [t.text.lower() for t in tokenize(sentences[position])]
            hit = next((i for i in range(cursor, len(tokens) - len(words) + 1)
                        if tokens[i : i + len(words)] == words), None)
            if hit is not None:
                break
            position, cursor = position + 1, 0
        else:
            raise CorpusError(f"anatomy phrase {phrase!r} not found in order in {list(sentences)}")
        entities = out[sentences[position]]["entities"]
        for offset, word in enumerate(tokenize(sentences[position])[hit : hit + len(words)]):
            entities[str(len(entities) + 1)] = {
                "tokens": word.text, "label": ANATOMY_LABEL, "start_ix": hit + offset, "end_ix": hit + offset,
                "relations": [],
            }
        cursor = hit + len(words)
    return out


class AnnotatedRadGraph:
    """An :class:`~cxrdata.extract.base.Extractor` answering with a case's hand-written RadGraph output."""

    name, version = "radgraph-annotated", "corpus"

    def __init__(self, case: Case) -> None:
        sentences = [s for text in case.sections.values() for s in split_sentences(text)]
        self.annotations = annotate(sentences, case.anatomy)

    def extract(self, sentences: Sequence[str]) -> list[list[Entity]]:
        return [entities_from_annotation(self.annotations.get(s, {"entities": {}})) for s in sentences]


@cache
def _rules() -> RuleExtractor:
    return RuleExtractor()


def extractor_for(path: str, case: Case) -> Extractor:
    """The extractor of one path for one case."""
    if path == "rules":
        return _rules()
    if path == "radgraph":
        return AnnotatedRadGraph(case)
    raise ValueError(f"unknown path {path!r}; choose one of {PATHS}")


def outcome(path: str, case: Case) -> str:
    """The prompt the path gives for the case, or its drop reason."""
    result = locate_report(case.sections, case.pathology, extractor_for(path, case))
    return result.prompt if result.prompt is not None else str(result.drop_reason)
