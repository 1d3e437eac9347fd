"""Throughput of the rule-based language stage on one core (target: >= 5,000 sentences/s for the extractor).

    python benchmarks/rules_extractor_throughput.py [--sentences 20000] [--repeats 3]

Sentences are hand-written MIMIC-style findings with varied numbers (so nothing repeats exactly).
Reports sentences/s for: the anatomy extractor, pathology mentions + negation (one pathology),
sentence splitting, and the whole report -> prompt function (reports/s). Each figure is the best of
``--repeats`` runs, per wall-clock second and per CPU second of this process (``process_time``): on a
shared machine the CPU figure is the one that says what one core does.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable

from cxrdata.extract.rules import RuleExtractor
from cxrdata.targets.locate import locate_reports
from cxrdata.text.mentions import find_mentions
from cxrdata.text.sentences import split_sentences

TEMPLATES = [
    "Large left pleural effusion is new, measuring {n}.{m} cm.",
    "Small right effusion is new.",
    "Right lower lobe opacities are better seen on the CT from {n} days ago.",
    "There is no pneumothorax.",
    "No focal consolidation, pleural effusion, or pneumothorax is seen.",
    "Bibasilar atelectasis, left greater than right, is unchanged since {n} hours ago.",
    "The cardiac silhouette is moderately enlarged.",
    "Mild pulmonary edema has improved since the prior study of {n}.",
    "Endotracheal tube tip is {n}.{m} cm above the carina.",
    "Right internal jugular catheter terminates in the mid SVC.",
    "Patchy opacity in the left mid lung may represent atelectasis or pneumonia.",
    "The left lower lobe consolidation has resolved.",
    "Blunting of the right costophrenic angle suggests a small effusion.",
    "Degenerative changes of the thoracic spine are noted at T{n}.",
    "Lingular and retrocardiac opacities are new, concerning for aspiration.",
    "Small left apical pneumothorax measures {n} mm.",
    "Heart size is normal and the mediastinal contours are unremarkable.",
    "Interval increase in the right upper lobe consolidation, {n} cm.",
]


def sentences(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [rng.choice(TEMPLATES).format(n=rng.randint(1, 99), m=rng.randint(0, 9)) for _ in range(count)]


def best_rate(fn: Callable[[], object], items: int, repeats: int) -> tuple[float, float]:
    """(items per wall-clock second, items per CPU second), each the best of ``repeats`` runs."""
    wall = cpu = float("inf")
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall = min(wall, time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - start_cpu)
    return items / wall, items / max(cpu, 1e-9)


def show(label: str, rates: tuple[float, float], unit: str, note: str = "") -> None:
    print(f"{label:26}{rates[0]:10,.0f} {unit}/s wall  {rates[1]:10,.0f} {unit}/CPU-s  {note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    batch = sentences(args.sentences)
    extractor = RuleExtractor()
    extractor.extract(batch[:100])  # warm caches (lexicon, regexes)

    show("rules extractor:", best_rate(lambda: extractor.extract(batch), len(batch), args.repeats), "sentences",
         "(target >= 5,000 per core)")
    rates = best_rate(lambda: [find_mentions(s, "Pleural Effusion") for s in batch], len(batch), args.repeats)
    show("mentions + negation:", rates, "sentences", "(one pathology)")
    reports = [" ".join(batch[i : i + 8]) for i in range(0, len(batch), 8)]
    show("sentence splitting:", best_rate(lambda: [split_sentences(r) for r in reports], len(batch), args.repeats),
         "sentences", "(sentence_rules.yaml; cached per text)")
    items = [({"findings": r}, "Pleural Effusion") for r in reports]
    show("report -> prompt (rules):", best_rate(lambda: locate_reports(items, extractor), len(items), args.repeats),
         "reports", "(8 sentences each)")


if __name__ == "__main__":
    main()
