"""Word tokens with character offsets, split like RadGraph-XL's input preprocessing.

RadGraph-XL (radgraph 0.1.18, ``radgraph_xl_preprocess_report``) runs nltk's ``wordpunct_tokenize``
(``\\w+|[^\\w\\s]+``) and then splits ``).``, ``%.``, ``.'``, ``%,`` and ``%)``. Entity token spans
(:class:`cxrdata.extract.base.Entity` ``start``/``end``) index these tokens, so the rule-based extractor
and the location mapper agree with RadGraph on what token ``i`` is.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import NamedTuple

_WORDPUNCT = re.compile(r"\w+|[^\w\s]+")
_SPLIT_PUNCT = re.compile(r"\)(?=\.)|%(?=[.,)])|\.(?=')")


class Token(NamedTuple):
    """One token and its ``[start, end)`` character span in the source text."""

    text: str
    start: int
    end: int


@lru_cache(maxsize=16384)
def tokenize(text: str) -> tuple[Token, ...]:
    """Tokens of ``text`` in order, with character offsets (cached: the extractor, the mention finder and
    the location mapper all tokenise the same sentence)."""
    tokens: list[Token] = []
    for match in _WORDPUNCT.finditer(text):
        word, start = match.group(), match.start()
        if word[0].isalnum() or word[0] == "_" or len(word) == 1:
            tokens.append(Token(word, start, match.end()))
            continue
        # Punctuation runs: split after ")" before ".", after "%" before ".,)" and after "." before "'".
        cut = 0
        for split in _SPLIT_PUNCT.finditer(word):
            tokens.append(Token(word[cut : split.end()], start + cut, start + split.end()))
            cut = split.end()
        tokens.append(Token(word[cut:], start + cut, match.end()))
    return tuple(tokens)


def token_index(tokens: Sequence[Token], char: int) -> int:
    """Index of the token containing (or first starting after) character offset ``char``."""
    for i, token in enumerate(tokens):
        if token.end > char:
            return i
    return len(tokens)
