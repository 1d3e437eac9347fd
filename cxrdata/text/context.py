"""ConText-style negation, resolution and uncertainty for a single sentence.

Why not medspaCy: medspaCy 1.3.1 (the current release) requires ``spacy<3.8`` on Python < 3.12, so
installing it downgrades spaCy and, through thinc 8.2, numpy to 1.x, which breaks opencv-python-headless 5
and pylibjpeg in our environment. Its ConText also needs local fixes (the ``": no"`` backward rule, and
rules for "may represent", "cannot be excluded", "is not seen"). The algorithm is small, so it is
re-implemented here with all phrases kept as data in ``context_rules.yaml``:

- triggers are phrases indexed by their first word; overlaps resolve to the leftmost, then the longest;
- ``pseudo`` phrases ("no change in") swallow the triggers they contain;
- a forward trigger modifies targets after it, a backward one targets before it, a bidirectional one both,
  until a ``terminate`` phrase or a trigger of another category;
- a target in a negated scope is ``negated`` (negated beats uncertain), else in an uncertain scope it is
  ``uncertain``, else ``positive``;
- a trigger inside the target phrase modifies it whatever its direction (the Cardiomegaly phrase
  "the heart is not enlarged" is negated by its own "not").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

from cxrdata.yamlfiles import load_yaml

Certainty = Literal["positive", "negated", "uncertain"]
POSITIVE: Certainty = "positive"
NEGATED: Certainty = "negated"
UNCERTAIN: Certainty = "uncertain"

_PUNCT_ONLY = re.compile(r"[\\;?.,:!]+")
_TOKEN = re.compile(r"\w+|[^\w\s]")
_LITERAL_HEAD = re.compile(r"[a-z]+|\\?[^\w\s\\]")
_ENDS_IN_LOOKAHEAD = re.compile(r"\(\?[=!][^()]*\)$")
_SEEN_MAX = 16384  # texts whose triggers are kept


@dataclass(frozen=True)
class Trigger:
    """A matched modifier phrase: category (negated, uncertain, terminate), direction, span."""

    category: str
    direction: str
    start: int
    end: int


def _split_top(alternatives: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in alternatives:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "|" and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current]


def _closing_paren(text: str) -> int:
    depth = 0
    for i, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0:
            return i
    raise ValueError(f"unbalanced parentheses in context rule {text!r}")


def expand_leading_group(fragment: str) -> list[str]:
    """Spell out a leading ``(?:a|b)`` or ``(?:a )?`` group so every phrase starts with a literal word."""
    if not fragment.startswith("(?:"):
        return [fragment]
    close = _closing_paren(fragment)
    inner, rest = fragment[3:close], fragment[close + 1 :]
    optional = rest.startswith("?")
    rest = rest[1:] if optional else rest
    out = [x for alt in _split_top(inner) for x in expand_leading_group(alt + rest)]
    return out + (expand_leading_group(rest) if optional else [])


def _compile(fragment: str) -> re.Pattern[str]:
    body = fragment.replace(" ?", r"\s*").replace(" ", r"\s+")
    bounded = _PUNCT_ONLY.fullmatch(fragment) or _ENDS_IN_LOOKAHEAD.search(fragment)
    return re.compile(body if bounded else rf"{body}(?!\w)")


class ConText:
    """Trigger-and-scope modifier detection over one sentence (see the module docstring).

    Phrases are indexed by their first word, so a sentence costs one tokenisation and a few anchored
    regex matches; overlapping matches resolve to the leftmost, then the longest.
    """

    def __init__(self, rules: dict) -> None:
        kinds: dict[str, tuple[str, str]] = {}
        for category in ("negated", "uncertain"):
            for direction, phrases in rules.get(category, {}).items():
                for phrase in phrases:
                    old = kinds.get(phrase)
                    same = old is not None and old[0] == category and old[1] != direction
                    kinds[phrase] = (category, "bidirectional" if same else direction)
        kinds.update({phrase: ("pseudo", "none") for phrase in rules.get("pseudo", [])})
        kinds.update({phrase: ("terminate", "none") for phrase in rules.get("terminate", [])})
        self._by_word: dict[str, list[tuple[re.Pattern[str], str, str]]] = {}
        self._by_prefix: dict[str, list[tuple[str, re.Pattern[str], str, str]]] = {}  # by first letter
        self._seen: dict[str, tuple[Trigger, ...]] = {}
        for phrase, (category, direction) in kinds.items():
            for variant in expand_leading_group(phrase.lower()):
                head = _LITERAL_HEAD.match(variant)
                if head is None:
                    raise ValueError(f"context rule must start with a literal word: {phrase!r}")
                word = head.group().lstrip("\\")
                entry = (_compile(variant), category, direction)
                rest = variant[head.end() :]
                if not rest or rest[0] not in "([?*+{":
                    self._by_word.setdefault(word, []).append(entry)
                else:
                    self._by_prefix.setdefault(word[:1], []).append((word, *entry))

    def triggers(self, text: str) -> tuple[Trigger, ...]:
        """Negation, uncertainty and termination triggers in ``text`` (pseudo-triggers removed); cached
        per text, since the mention finder, the extractor and the location mapper all ask."""
        found = self._seen.get(text)
        if found is None:
            if len(self._seen) >= _SEEN_MAX:
                self._seen.clear()
            found = self._seen[text] = self._find(text)
        return found

    def _find(self, text: str) -> tuple[Trigger, ...]:
        lower = text.lower()
        found: list[tuple[int, int, str, str]] = []
        for token in _TOKEN.finditer(lower):
            word = token.group()
            entries = self._by_word.get(word, ())
            prefixed = self._by_prefix.get(word[:1])
            if prefixed:
                entries = [*entries, *(e[1:] for e in prefixed if word.startswith(e[0]))]
            for regex, category, direction in entries:
                match = regex.match(lower, token.start())
                if match:
                    found.append((match.start(), match.end(), category, direction))
        found.sort(key=lambda f: (f[0], -f[1]))
        kept: list[Trigger] = []
        reach = -1
        for start, end, category, direction in found:
            if start < reach:
                continue
            reach = end
            if category != "pseudo":
                kept.append(Trigger(category, direction, start, end))
        return tuple(kept)

    def certainty(self, text: str, start: int, end: int, triggers: Sequence[Trigger] | None = None) -> Certainty:
        """Whether the target ``text[start:end]`` is positive, negated or uncertain."""
        if triggers is None:
            triggers = self.triggers(text)
        covering: set[str] = set()
        for i, trigger in enumerate(triggers):
            if trigger.category == "terminate" or trigger.category in covering:
                continue
            if start < trigger.start and trigger.end <= end:
                covering.add(trigger.category)
            elif trigger.end <= start and trigger.direction in ("forward", "bidirectional"):
                between = triggers[i + 1 :]
                if not any(t.start < start and _stops(t, trigger) for t in between):
                    covering.add(trigger.category)
            elif trigger.start >= end and trigger.direction in ("backward", "bidirectional"):
                between = triggers[:i]
                if not any(t.end > end and _stops(t, trigger) for t in between):
                    covering.add(trigger.category)
        if NEGATED in covering:
            return NEGATED
        return UNCERTAIN if UNCERTAIN in covering else POSITIVE


def _stops(other: Trigger, trigger: Trigger) -> bool:
    return other.category == "terminate" or other.category != trigger.category


@cache
def default_context() -> ConText:
    """The ConText instance built from the packaged ``context_rules.yaml``."""
    rules = load_yaml(resources.files("cxrdata.text").joinpath("context_rules.yaml").read_text())
    return ConText(rules)
