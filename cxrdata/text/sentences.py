"""Sentence splitting for report sections: rules of our own, their word lists in ``sentence_rules.yaml``.

Raw MIMIC text is whitespace-normalised first (line wraps joined, blank lines kept as paragraph breaks);
paragraphs are never merged into one sentence. In a paragraph a sentence ends at ``.``, ``?`` or ``!``
(with any closing quote or bracket) followed by whitespace or the paragraph's end, except:

- inside parentheses, square brackets or double quotes ("(see prior. stable)"), unless the bracket or
  quote closes right after the period and a capital letter follows ('"no effusion." Next');
- after a single capital letter ("the L. upper lobe") or a word that never ends a sentence ("Dr. ___",
  "vs.", "e.g.", any "x.y." of single letters);
- after an abbreviation ("approx.", "etc.", "a.m.") when the next word starts with a lower-case letter,
  a digit or "(": "approx. 5 cm" is one sentence, "at 10:30 a.m. The patient" two;
- after the list number (or letter) that starts a sentence ("2. No pneumothorax");
- an ellipsis ("...") ends one only before a capital letter; "!" never before a lower-case word.

Decimals ("4.5 cm"), words joined by a period ("apex.There") and question prefixes ("with ?pleural
effusion") never end a sentence; a period directly before a character that cannot go on a word or a
clause ("normal.&gt;", "CXR.;") does, and so does a "?" or "!" squeezed between two words
("effusion?No"). A doubled period ends the sentence at its first period ("clear.."). A parenthesis that
opens a sentence and is followed by a capital letter is a sentence ("(Small) The heart"). Lists
("1. ... 2. ...", "1) ... 2) ...", "a. ... b. ..."; a number is a list number when the paragraph also
has the next or the previous one) start a sentence at each item, period before it or not; list numbers
are stripped from sentence starts.

This reproduces pysbd 0.3.4 (the splitter used before) on the report corpora, about 40 times faster;
docs/decisions.md ("Sentence splitting") lists every case where the two differ, and why.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache
from importlib import resources
from itertools import pairwise

from cxrdata.text.sections import normalize_whitespace
from cxrdata.yamlfiles import load_yaml

_ENUMERATOR = re.compile(r"^\(?\d{1,2}[.)]\s+(?=\S)")
_END = re.compile(r"[.?!]+")
_SHIELDS = re.compile(r"\([^()]*\)|\[[^\[\]]*\]|\"[^\"]*\"")
_LISTS = (re.compile(r"(?:(?<=\s)|^)(\d{1,2})\.(?=\s)"), re.compile(r"(\d{1,2})\)(?=\s)"),
          re.compile(r"(?:(?<=\s)|^)([a-z])\.(?=\s)"), re.compile(r"(?:(?<=[\s(])|^)([a-z])\)(?=\s)"))
_LIST_HINT = re.compile(r"(?:^|[\s(])(?:\d{1,2}|[a-z])[.)]\s")  # one cheap pass before the four above
_DOTTED = re.compile(r"[a-z](?:\.[a-z])+")
_LIST_WORD = re.compile(r"\(?(?:\d{1,2}|[a-z])")
_CONTINUES = "_,:-"  # after a period these go on with the sentence ("p.m., 2 minutes later")


@cache
def sentence_rules() -> dict:
    """The parsed ``sentence_rules.yaml``, word lists as frozensets; a list holding a non-word (YAML reads
    a bare ``no`` as false) is a ValueError, not a silently missing word."""
    data = load_yaml(resources.files("cxrdata.text").joinpath("sentence_rules.yaml").read_text())
    for key in ("never_end", "abbreviations"):
        bad = [w for w in data[key] if not isinstance(w, str)]
        if bad:
            raise ValueError(f"sentence_rules.yaml {key}: {bad!r} are not words (quote them)")
        data[key] = frozenset(w.lower() for w in data[key])
    return data


def split_sentences(text: str | None) -> list[str]:
    """Sentences of a section's text, stripped, list numbers removed, empty ones dropped, in order."""
    return list(_split(text)) if text else []


@lru_cache(maxsize=4096)
def _split(text: str) -> tuple[str, ...]:
    """One section's sentences; cached, since the images of a study share their report."""
    return tuple(s for paragraph in normalize_whitespace(text).split("\n") for s in split_paragraph(paragraph))


def split_paragraph(paragraph: str) -> list[str]:
    """The sentences of one whitespace-normalised paragraph (no newline inside)."""
    pieces, start = [], 0
    for end, resume in _cuts(paragraph):
        pieces.append(paragraph[start:end])
        start = resume
    pieces.append(paragraph[start:])
    out = []
    for piece in pieces:
        sentence = _ENUMERATOR.sub("", piece.strip())
        if sentence and any(char.isalnum() for char in sentence):
            out.append(sentence)
    return out


def _cuts(text: str) -> list[tuple[int, int]]:
    """(end of a sentence, start of the next) offsets, in order."""
    cuts = {(i, i) for i in _list_starts(text)}
    ends = list(_END.finditer(text))
    if not ends and not cuts:
        return []
    rules = sentence_rules()
    shields = [m.span() for m in _SHIELDS.finditer(text)] if any(c in text for c in "([\"") else []
    starts = {0} | {i for i, _ in cuts}
    for match in ends:
        cut = _cut(text, match, rules, shields, starts)
        if cut is not None:
            cuts.add(cut)
            starts.add(cut[1])
    for begin, close in shields:  # "(Small) The heart": a parenthesis opening a sentence is one
        if text[begin] == "(" and begin in starts and close - begin > 3 and _capital_after(text, close):
            cuts.add((close, close + 1))
    return sorted(cuts)


def _capital_after(text: str, i: int) -> bool:
    return i + 1 < len(text) and text[i] == " " and text[i + 1].isupper()


def _skip(text: str, i: int, chars: str) -> int:
    while i < len(text) and text[i] in chars:
        i += 1
    return i


def _cut(text: str, match: re.Match[str], rules: dict, shields: list[tuple[int, int]],
         starts: set[int]) -> tuple[int, int] | None:
    """(end, resume) of the sentence that the punctuation run ``match`` ends, or None if it ends none."""
    punct, (start, end) = match.group(), match.span()
    after = _skip(text, end, rules["closers"])
    spaced = after == len(text) or text[after].isspace()
    resume = _skip(text, after, " ") if spaced else after
    following = text[resume] if resume < len(text) else ""
    shield = next(((s, e) for s, e in shields if s < start < e), None) if shields else None
    if shield is not None:  # only when the quote or bracket closes here, before a capital letter
        return (after, resume) if shield[1] <= after and spaced and following.isupper() else None
    if punct == "..":  # "clear.." is "clear."; "at ___ p.m.." stays whole
        if _DOTTED.fullmatch(_word_before(text, start)[1].lower()):
            return (after, resume) if spaced else None
        return (start + 1, resume if spaced else start + 1)
    if not spaced:
        return _squeezed(text, punct, start, end)
    if punct == ".":
        return None if _period_continues(text, start, following, rules, starts) else (after, resume)
    if set(punct) == {"."}:
        return (after, resume) if following.isupper() else None  # an ellipsis
    if punct == "!" and following.islower():
        return None
    return after, resume


def _squeezed(text: str, punct: str, start: int, end: int) -> tuple[int, int] | None:
    """A run with no space after it: "normal.&gt;", "CXR.;" and "effusion?No" end a sentence."""
    nxt = text[end]
    if punct[0] == ".":
        return None if nxt.isalnum() or nxt in _CONTINUES or nxt in "\"')]" else (end, end)
    if nxt.isalnum() and start > 0 and text[start - 1].isalnum():
        return end, end
    return None


def _word_before(text: str, i: int) -> tuple[int, str]:
    """(offset, text) of the word that ends at ``i``, without leading brackets or quotes."""
    begin = text.rfind(" ", 0, i) + 1
    word = text[begin:i].lstrip("([\"'")
    return i - len(word), word


def _period_continues(text: str, start: int, following: str, rules: dict, starts: set[int]) -> bool:
    """Whether a period followed by a space leaves the sentence open (an initial, an abbreviation, a list
    number)."""
    begin, word = _word_before(text, start)
    if not word:
        return False
    lower = word.lower()
    if len(word) == 1 and "A" <= word <= "Z":
        return True  # an initial: "the L. upper lobe"
    if lower in rules["never_end"] or (_DOTTED.fullmatch(lower) and lower not in rules["abbreviations"]):
        return True
    if _LIST_WORD.fullmatch(word) and (begin in starts or begin - 1 in starts):
        return True  # the number of a list item: "2. No pneumothorax"
    return lower in rules["abbreviations"] and (following.islower() or following.isdigit() or following == "(")


def _list_starts(text: str) -> list[int]:
    """Offsets where list items start, but at the paragraph's start. A number (or letter) is a list number
    wherever it occurs when the paragraph's numbers of its kind ("N.", "N)", "a.", "a)") hold it right
    before or after its successor; an item starts at it after a space ("(N)" counts, but starts nothing)."""
    starts: list[int] = []
    if not _LIST_HINT.search(text):
        return starts
    for pattern in _LISTS:
        found = [(m.group(1), m.start()) for m in pattern.finditer(text)]
        keys = [int(k) if k.isdigit() else ord(k) for k, _ in found]
        listed = {n for a, b in pairwise(keys) if b == a + 1 for n in (a, b)}
        starts += [i for (_, i), n in zip(found, keys, strict=True) if n in listed and i > 0 and text[i - 1] == " "]
    return starts
