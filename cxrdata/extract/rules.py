"""Rule-based anatomy extractor: a deterministic, CPU-only stand-in for RadGraph-XL's anatomy entities.

Anatomy phrases are maximal runs of lexicon words (``location_rules.yaml``: sides, zones, regions, lung
structures and other structures; a hyphen may join them, "mid-lung", "right-sided"). A run of side words
alone ("right") is kept only when it modifies a finding ("right pneumothorax", "right and small left
effusions": a pathology term within the next five tokens, not past a device word such as "PICC"),
follows "on/in/at/to the" ("effusion on the left"), follows a finding in the same clause ("effusions are
present bilaterally": a pathology term within the four tokens before it, the side not followed by a
device), or is joined by connector words to other anatomy ("left greater than right basilar"). Position
modifiers (medial, lateral, posterior, ...) are part of the lexicon, so they do not break a run. Each
phrase's certainty comes from the ConText rules: ANAT-DP when positive, ANAT-DA when negated ("no left
effusion") and ANAT-U when uncertain. Token spans index :func:`cxrdata.text.tokens.tokenize`
(RadGraph-XL's tokenisation). Version 2: the lexicon and side rules of issue 13 (the extraction cache
is keyed by name and version, so entities of version 1 are never reused).
"""

from __future__ import annotations

from collections.abc import Sequence

from cxrdata.anatomy.location_rules import anatomy_words, rules
from cxrdata.text.context import NEGATED, UNCERTAIN, default_context
from cxrdata.text.entities import ANAT_DP, Entity
from cxrdata.text.mentions import mentions_any_pathology
from cxrdata.text.tokens import Token, tokenize

ANAT_DA = "ANAT-DA"  # anatomy in a negated context (like RadGraph's OBS-DA)
ANAT_U = "ANAT-U"  # anatomy in an uncertain context
_PREPOSITIONS = frozenset({"on", "in", "at", "to", "within", "involving"})
_LABELS = {NEGATED: ANAT_DA, UNCERTAIN: ANAT_U}
_WINDOW = 5  # tokens after a bare side word in which a finding makes it a location
_BACK_WINDOW = 4  # tokens before a bare side word in which a finding makes it a location
_CLAUSE_ENDS = frozenset({".", ",", ";", ":"})


class RuleExtractor:
    """Lexicon-and-pattern anatomy extraction implementing :class:`cxrdata.extract.base.Extractor`."""

    name = "rules"
    version = "2"

    def __init__(self) -> None:
        self._words = anatomy_words()
        self._sides = frozenset(rules()["sides"])
        self._connectors = frozenset(rules()["connectors"])
        self._devices = frozenset(rules()["devices"])
        self._context = default_context()

    def extract(self, sentences: Sequence[str]) -> list[list[Entity]]:
        """One list of anatomy entities per sentence, in input order."""
        return [self.extract_one(sentence) for sentence in sentences]

    def extract_one(self, sentence: str) -> list[Entity]:
        """Anatomy entities of one sentence."""
        tokens = tokenize(sentence)
        spans = [span for span in self._runs(tokens) if self._keep(sentence, tokens, *span)]
        if not spans:
            return []
        triggers = self._context.triggers(sentence)
        entities = []
        for first, last in spans:
            certainty = self._context.certainty(sentence, tokens[first].start, tokens[last].end, triggers)
            text = " ".join(t.text for t in tokens[first : last + 1])
            entities.append(Entity(text, _LABELS.get(certainty, ANAT_DP), first, last))
        return entities

    def _runs(self, tokens: list[Token]) -> list[tuple[int, int]]:
        runs: list[tuple[int, int]] = []
        start = None
        for i, token in enumerate(tokens):
            word = token.text.lower()
            if word in self._words:
                if start is None:
                    start = i
                continue
            joined = word == "-" and start is not None and i + 1 < len(tokens)
            if joined and tokens[i + 1].text.lower() in self._words:
                continue
            if start is not None:
                runs.append((start, i - 1))
                start = None
        if start is not None:
            runs.append((start, len(tokens) - 1))
        return runs

    def _keep(self, sentence: str, tokens: list[Token], first: int, last: int) -> bool:
        if any(t.text.lower() not in self._sides for t in tokens[first : last + 1]):
            return True
        before = [t.text.lower() for t in tokens[max(0, first - 2) : first]]
        if before and (before[-1] in _PREPOSITIONS or (before[-1] == "the" and before[0] in _PREPOSITIONS)):
            return True
        if self._linked(tokens, last + 1, 1) or self._linked(tokens, first - 1, -1):
            return True
        if self._after_finding(sentence, tokens, first, last):
            return True
        window = tokens[last + 1 : last + 1 + _WINDOW]
        for i, token in enumerate(window):
            if token.text.lower() in self._devices:
                window = window[:i]
                break
        return bool(window) and mentions_any_pathology(sentence[window[0].start : window[-1].end])

    def _after_finding(self, sentence: str, tokens: list[Token], first: int, last: int) -> bool:
        """Whether a finding comes shortly before the side word in its clause ("effusions bilaterally")."""
        if last + 1 < len(tokens) and tokens[last + 1].text.lower() in self._devices:
            return False
        window = tokens[max(0, first - _BACK_WINDOW) : first]
        for i in range(len(window) - 1, -1, -1):
            if window[i].text in _CLAUSE_ENDS:
                window = window[i + 1 :]
                break
        return bool(window) and mentions_any_pathology(sentence[window[0].start : window[-1].end])

    def _linked(self, tokens: list[Token], i: int, step: int) -> bool:
        """Whether connector words ("and", "greater than") lead from token ``i`` to another anatomy word."""
        crossed = False
        while 0 <= i < len(tokens) and tokens[i].text.lower() in self._connectors:
            i, crossed = i + step, True
        return crossed and 0 <= i < len(tokens) and tokens[i].text.lower() in self._words
