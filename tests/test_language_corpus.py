"""Every entry of the labelled language corpus (tests/data/language_corpus), through both extractor paths.

One test per (entry, pathology, path): the rule-based extractor and hand-written RadGraph-XL-style anatomy,
both through :func:`cxrdata.targets.locate.locate_report` and the shared location mapper. Known failures are
``xfail(strict=True)`` with the corpus's reason, so a fix that makes one pass must also update the corpus.
"""

from __future__ import annotations

from collections import Counter

import pytest
from language_corpus import DROP_REASONS, PATHS, AnnotatedRadGraph, Case, load_cases, outcome

from cxrdata.targets.prompts import pathology_words
from cxrdata.vocabulary import locations, pathologies

CASES = load_cases()


def _params() -> list:
    params = []
    for case in CASES:
        for path in PATHS:
            marks = [pytest.mark.xfail(reason=case.xfail[path], strict=True)] if path in case.xfail else []
            params.append(pytest.param(path, case, id=f"{path}:{case.id}", marks=marks))
    return params


@pytest.mark.parametrize(("path", "case"), _params())
def test_corpus_entry(path: str, case: Case) -> None:
    assert outcome(path, case) == case.expected, case.text


def _is_valid_expectation(case: Case) -> bool:
    if case.expected in DROP_REASONS:
        return True
    suffix = " " + pathology_words(case.pathology)
    if not case.expected.endswith(suffix):
        return False
    terms = case.expected[: -len(suffix)].split(" <and> ")
    return all(t in locations() for t in terms)


def test_corpus_is_well_formed() -> None:
    bad = [c.id for c in CASES if c.pathology not in pathologies() or not _is_valid_expectation(c)]
    assert bad == []
    for case in CASES:  # every anatomy phrase is found, in order (raises CorpusError otherwise)
        annotated = AnnotatedRadGraph(case).annotations
        assert sum(len(a["entities"]) for a in annotated.values()) >= len(case.anatomy)


def test_corpus_size_and_coverage() -> None:
    sentences = {c.text for c in CASES if c.kind == "sentence"}
    reports = {c.text for c in CASES if c.kind == "report"}
    assert len(sentences) >= 400 and len(reports) >= 100
    classes = Counter(c.cls for c in CASES)
    assert {f"c{i}" for i in range(1, 10)} <= {k.split("_")[0] for k in classes}
    assert {c.pathology for c in CASES} == set(pathologies())
    expected_terms = {t for c in CASES if c.expected not in DROP_REASONS
                      for t in c.expected.rsplit(" " + pathology_words(c.pathology), 1)[0].split(" <and> ")}
    assert expected_terms == set(locations())
    assert set(DROP_REASONS) <= {c.expected for c in CASES}
