"""Our sentence splitter against pysbd 0.3.4 (the splitter used before) on the report corpora: agreement and speed.

    pip install pysbd==0.3.4
    python benchmarks/sentence_splitting.py [--subjects 400] [--real-text indiana_reports.csv] [--show 40]

Corpora: every section (findings, impression, last_paragraph, comparison) of the reports of a generated
MIMIC sample (``--subjects``), every text of tests/data/language_corpus, and, with ``--real-text``, the
findings and impression of each report of a public CSV (the Open-i chest X-ray collection of Indiana
University: ``indiana_reports.csv``, columns findings and impression). Each distinct section text is split
by both (pysbd run paragraph by paragraph exactly as cxrdata did before: whitespace normalised, list
numbers stripped, sentences without a letter or digit dropped); printed per corpus: sections, sections
split identically, CPU seconds of each splitter, and the first ``--show`` differing sections.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from collections.abc import Iterable
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


@cache
def _segmenter():
    import pysbd

    return pysbd.Segmenter(language="en", clean=False)


def pysbd_split(text: str) -> list[str]:
    """cxrdata's splitting before issue 16, on pysbd."""
    from cxrdata.text.sections import normalize_whitespace
    from cxrdata.text.sentences import _ENUMERATOR

    out = []
    for paragraph in normalize_whitespace(text).split("\n"):
        for sentence in _segmenter().segment(paragraph):
            sentence = _ENUMERATOR.sub("", sentence.strip())
            if sentence and any(c.isalnum() for c in sentence):
                out.append(sentence)
    return out


def sample_sections(subjects: int) -> list[str]:
    from cxrdata.sample.mimic import write_mimic_sample
    from cxrdata.text.sections import report_sections

    root = Path(tempfile.mkdtemp(prefix="cxrdata-split-")) / "mimic-cxr-jpg"
    write_mimic_sample(root, subjects=subjects, seed=0)
    texts = []
    for report in sorted(root.parent.rglob("s*.txt")):
        sections = report_sections(report.read_text(encoding="utf-8", errors="replace"), report.stem)
        texts += [t for t in (sections.findings, sections.impression, sections.last_paragraph,
                              sections.comparison) if t]
    return texts


def corpus_sections() -> list[str]:
    from language_corpus import load_cases

    return [text for case in load_cases() for text in case.sections.values()]


def real_sections(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as f:
        return [row[k] for row in csv.DictReader(f) for k in ("findings", "impression") if row.get(k)]


def compare(name: str, texts: Iterable[str], show: int) -> int:
    from cxrdata.text.sentences import _split, split_sentences

    distinct = sorted(set(texts))
    _split.cache_clear()  # every text split afresh: its per-text cache would otherwise time nothing
    started = time.process_time()
    ours = [split_sentences(t) for t in distinct]
    ours_s = time.process_time() - started
    started = time.process_time()
    theirs = [pysbd_split(t) for t in distinct]
    theirs_s = time.process_time() - started
    differ = [(t, a, b) for t, a, b in zip(distinct, ours, theirs, strict=True) if a != b]
    print(f"{name}: {len(distinct)} distinct sections, {len(distinct) - len(differ)} split identically "
          f"({1 - len(differ) / max(len(distinct), 1):.1%}); CPU s ours {ours_s:.3f}, pysbd {theirs_s:.3f} "
          f"({theirs_s / max(ours_s, 1e-9):.0f}x)")
    for text, a, b in differ[:show]:
        print(f"  TEXT  {text!r}\n  ours  {a}\n  pysbd {b}")
    return len(differ)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=400)
    parser.add_argument("--real-text", type=Path)
    parser.add_argument("--show", type=int, default=40)
    args = parser.parse_args()
    compare("language corpus", corpus_sections(), args.show)
    compare(f"MIMIC sample ({args.subjects} subjects)", sample_sections(args.subjects), args.show)
    if args.real_text:
        compare(f"real text ({args.real_text.name})", real_sections(args.real_text), args.show)


if __name__ == "__main__":
    main()
