"""Agreement of the language stage with the labelled corpus, per error class, for both extractor paths.

    python benchmarks/language_accuracy.py [--corpus tests/data/language_corpus] [--show-failures]

Paths: ``rules`` (the rule-based extractor) and ``radgraph`` (hand-written RadGraph-XL-style anatomy
through the same location mapper as the RadGraph backend); both run :func:`cxrdata.targets.locate.locate_report`
on every (entry, pathology) case of tests/data/language_corpus. A case agrees when its prompt (or drop
reason) is exactly the expected one; known failures (xfail) count as disagreements. Besides per-class
agreement it prints the three figures of issue 13:

- among prompted: of the cases given a prompt whose expected outcome is a prompt, the share that is exact;
- end to end: of the cases expected to be located, the share given exactly the expected prompt;
- false prompts from negated: of the cases expected ``negated``, the share that got a prompt anyway.

To measure older code, point PYTHONPATH at its checkout; the corpus and this script only use public
functions that existed before the corpus did.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from language_corpus import CORPUS_DIR, DROP_REASONS, PATHS, Case, load_cases, outcome  # noqa: E402

import cxrdata  # noqa: E402

ISSUE_CLASS = re.compile(r"(?:report_)?(c\d)(?:_|$)")


def group(cls: str, detail: bool) -> str:
    """The row a case counts in: the issue's class (c1..c9, sentences and reports together) unless
    ``detail``; other classes as they are, "report_cardiac_negation" with "x_cardiac_negation"."""
    if detail:
        return cls
    match = ISSUE_CLASS.match(cls)
    return match.group(1) if match else cls.replace("report_cardiac_negation", "x_cardiac_negation")


def run(cases: tuple[Case, ...]) -> dict[str, list[tuple[Case, str]]]:
    """Each path's outcome per case."""
    return {path: [(case, outcome(path, case)) for case in cases] for path in PATHS}


def _pct(hits: int, total: int) -> str:
    return f"{100 * hits / total:5.1f}% ({hits}/{total})" if total else "    -"


def report(results: dict[str, list[tuple[Case, str]]], detail: bool = False) -> str:
    """The per-class table and the issue's three figures, as text."""
    classes = sorted({group(case.cls, detail) for case, _ in next(iter(results.values()))})
    width = max(len(c) for c in classes) + 2
    lines = [f"{'class':{width}}" + "".join(f"{path:>22}" for path in PATHS)]
    for cls in [*classes, "overall"]:
        row = f"{cls:{width}}"
        for path in PATHS:
            chosen = [(c, got) for c, got in results[path] if cls in ("overall", group(c.cls, detail))]
            row += f"{_pct(sum(got == c.expected for c, got in chosen), len(chosen)):>22}"
        lines.append(row)
    lines.append("")
    for path in PATHS:
        pairs = results[path]
        located = [(c, got) for c, got in pairs if c.expected not in DROP_REASONS]
        prompted = [(c, got) for c, got in located if got not in DROP_REASONS]
        negated = [(c, got) for c, got in pairs if c.expected == "negated"]
        lines.append(
            f"{path:9} among prompted {_pct(sum(g == c.expected for c, g in prompted), len(prompted))}   "
            f"end to end {_pct(sum(g == c.expected for c, g in located), len(located))}   "
            f"false prompts from negated {_pct(sum(g not in DROP_REASONS for _, g in negated), len(negated))}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS_DIR)
    parser.add_argument("--detail", action="store_true", help="one row per corpus class, not per issue class")
    parser.add_argument("--show-failures", action="store_true", help="list every disagreeing case")
    args = parser.parse_args()
    cases = load_cases(args.corpus)
    results = run(cases)
    n_sentences = len({c.text for c in cases if c.kind == "sentence"})
    n_reports = len({c.text for c in cases if c.kind == "report"})
    xfails = defaultdict(int)
    for case in cases:
        for path in case.xfail:
            xfails[path] += 1
    print(f"cxrdata: {Path(cxrdata.__file__).parent}")
    print(f"corpus: {n_sentences} sentences, {n_reports} reports, {len(cases)} cases; "
          f"known failures: " + ", ".join(f"{p} {xfails[p]}" for p in PATHS))
    print(report(results, args.detail))
    if args.show_failures:
        for path in PATHS:
            for case, got in results[path]:
                if got != case.expected:
                    print(f"[{path}] {case.id} [{case.cls}] expected {case.expected!r}, got {got!r}: {case.text!r}")


if __name__ == "__main__":
    main()
