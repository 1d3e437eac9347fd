"""The token codebook of LDM prompt tuning (seed 003, section 3.3) and prompt -> token sequence mapping.

The codebook holds one row per CLIP sub-token of the prompt vocabulary (``cxrdata.vocabulary``):
the words of the 27 location terms (role ``location``, the only trainable rows), the words of the 8
pathologies (role ``pathology``, frozen) and the special tokens ``<BoS>``, ``<EoS>``, ``<pad>`` and ``<and>``
(role ``special``, frozen), each initialised from CLIP's own token embedding (``<and>`` from the word
``and``). A sub-token shared by a location and a pathology word (``pleural``, ``cardiomegaly``) gets one row
per role with ``shared_subtokens: separate`` (tuning a location never moves a pathology embedding), or one
row, trainable, with ``shared``. With Stable Diffusion 2.1's CLIP tokenizer: 26 location + 23 pathology + 4
special = 53 rows (``separate``) or 43 + 4 = 47 (``shared``); the paper reports 46.

The text encoder sees *virtual ids*: a CLIP id ``< V`` (vocabulary size) for a word outside the codebook
(frozen CLIP embedding), ``V + row`` for a codebook row. :class:`CodebookTokenEmbedding` replaces
``text_model.embeddings.token_embedding`` and resolves both, so ``CLIPTextModel`` (transformers < 5, which
has no ``inputs_embeds``) runs unchanged while gradients reach the trainable rows only.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cxrdata.errors import CxrdataError
from cxrdata.targets.prompts import pathology_words
from cxrdata.vocabulary import locations, pathologies

LOCATION, PATHOLOGY, SPECIAL = "location", "pathology", "special"
SPECIAL_NAMES = ("<BoS>", "<EoS>", "<pad>", "<and>")
SHARED_MODES = ("separate", "shared")
EMBEDDINGS_FORMAT = "cxrdata.ldm_codebook"
EMBEDDINGS_VERSION = "1"


def _unique_words(phrases: Sequence[str]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for phrase in phrases:
        for word in phrase.lower().split():
            seen.setdefault(word, None)
    return tuple(seen)


def location_words() -> tuple[str, ...]:
    """The distinct words of the 27 location terms, in vocabulary order."""
    return _unique_words(locations())


def pathology_word_list() -> tuple[str, ...]:
    """The distinct words of the 8 pathologies as written in prompts, in vocabulary order."""
    return _unique_words([pathology_words(p) for p in pathologies()])


@dataclass(frozen=True)
class CodebookRow:
    """One codebook row: its role, the CLIP token that initialises it and the words using it."""

    role: str
    token: str
    clip_id: int
    words: tuple[str, ...]


@dataclass(frozen=True)
class TokenTable:
    """The codebook layout: rows, which rows spell each (role, word), the special rows, CLIP's vocabulary size."""

    rows: tuple[CodebookRow, ...]
    word_rows: dict[tuple[str, str], tuple[int, ...]]
    special: dict[str, int]
    vocab_size: int
    shared_subtokens: str
    and_token: str

    @property
    def trainable_rows(self) -> tuple[int, ...]:
        return tuple(i for i, row in enumerate(self.rows) if row.role == LOCATION)

    def to_json(self) -> str:
        return json.dumps({
            "vocab_size": self.vocab_size,
            "shared_subtokens": self.shared_subtokens,
            "and_token": self.and_token,
            "special": self.special,
            "rows": [{"role": r.role, "token": r.token, "clip_id": r.clip_id, "words": list(r.words)}
                     for r in self.rows],
            "word_rows": [[role, word, list(rows)] for (role, word), rows in self.word_rows.items()],
        }, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TokenTable:
        doc = json.loads(text)
        return cls(
            rows=tuple(CodebookRow(r["role"], r["token"], int(r["clip_id"]), tuple(r["words"])) for r in doc["rows"]),
            word_rows={(role, word): tuple(rows) for role, word, rows in doc["word_rows"]},
            special={k: int(v) for k, v in doc["special"].items()},
            vocab_size=int(doc["vocab_size"]),
            shared_subtokens=doc["shared_subtokens"],
            and_token=doc["and_token"],
        )


def build_token_table(tokenizer: Any, vocab_size: int, shared_subtokens: str = "separate",
                      and_token: str = "<and>", and_init: str = "and") -> TokenTable:
    """The codebook layout for ``tokenizer`` (a transformers CLIP tokenizer): specials, locations, pathologies."""
    if shared_subtokens not in SHARED_MODES:
        raise CxrdataError(f"codebook.shared_subtokens must be one of {SHARED_MODES}, got {shared_subtokens!r}")
    and_ids = tokenizer(and_init, add_special_tokens=False).input_ids
    if len(and_ids) != 1:
        raise CxrdataError(f"codebook.and_init {and_init!r} must be a single CLIP token, got {len(and_ids)}")
    specials = {"<BoS>": tokenizer.bos_token_id, "<EoS>": tokenizer.eos_token_id,
                "<pad>": tokenizer.pad_token_id, "<and>": and_ids[0]}
    for name, clip_id in specials.items():
        if clip_id is None or not 0 <= clip_id < vocab_size:
            raise CxrdataError(f"the CLIP tokenizer has no usable id for {name} ({clip_id!r})")

    roles: list[str] = []
    tokens: list[str] = []
    clip_ids: list[int] = []
    words: list[list[str]] = []
    index: dict[tuple[str, int], int] = {}
    special_rows: dict[str, int] = {}
    for name in SPECIAL_NAMES:
        special_rows[name] = len(roles)
        roles.append(SPECIAL)
        tokens.append(name)
        clip_ids.append(int(specials[name]))
        words.append([])
    word_rows: dict[tuple[str, str], tuple[int, ...]] = {}
    for role, vocab in ((LOCATION, location_words()), (PATHOLOGY, pathology_word_list())):
        for word in vocab:
            ids = tokenizer(word, add_special_tokens=False).input_ids
            if not ids:
                raise CxrdataError(f"the CLIP tokenizer gives no token for {word!r}")
            rows = []
            for clip_id in ids:
                key = (role if shared_subtokens == "separate" else "any", int(clip_id))
                if key not in index:
                    index[key] = len(roles)
                    roles.append(role)
                    tokens.append(tokenizer.convert_ids_to_tokens(int(clip_id)))
                    clip_ids.append(int(clip_id))
                    words.append([])
                row = index[key]
                if word not in words[row]:
                    words[row].append(word)
                rows.append(row)
            word_rows[(role, word)] = tuple(rows)
    table_rows = tuple(CodebookRow(r, t, c, tuple(w)) for r, t, c, w in zip(roles, tokens, clip_ids, words,
                                                                           strict=True))
    return TokenTable(table_rows, word_rows, special_rows, int(vocab_size), shared_subtokens, and_token)


@dataclass(frozen=True)
class EncodedPrompt:
    """A prompt as ``max_tokens`` virtual ids; ``content`` marks the non-special positions."""

    ids: tuple[int, ...]
    content: tuple[bool, ...]


@cache
def _pathology_phrases() -> list[tuple[str, ...]]:
    """The pathologies' word sequences, longest first."""
    return sorted({tuple(pathology_words(p).split()) for p in pathologies()}, key=len, reverse=True)


def split_prompt(prompt: str, and_token: str = "<and>") -> list[tuple[str, str]]:
    """``"{location} <and> {location} {pathology}"`` -> ``[(word, role)]`` with role location, pathology,
    ``special`` (the ``<and>`` token) or ``other`` (a word of neither vocabulary).

    Each ``<and>``-separated segment ends with a pathology phrase when one matches its last words (and the
    segment is the last one or has words before it); its other words are location words when the location
    vocabulary has them. ``"cardiomegaly cardiomegaly"``: a location, then the pathology.
    """
    loc_words = set(location_words())
    words = prompt.lower().split()
    segments: list[list[str]] = [[]]
    for word in words:
        if word == and_token:
            segments.append([])
        else:
            segments[-1].append(word)
    out: list[tuple[str, str]] = []
    for k, segment in enumerate(segments):
        if k > 0:
            out.append((and_token, SPECIAL))
        tail: tuple[str, ...] = ()
        for phrase in _pathology_phrases():
            n = len(phrase)
            if tuple(segment[-n:]) == phrase and (len(segment) > n or k == len(segments) - 1):
                tail = phrase
                break
        head = segment[: len(segment) - len(tail)]
        out.extend((w, LOCATION if w in loc_words else "other") for w in head)
        out.extend((w, PATHOLOGY) for w in tail)
    return out


class PromptEncoder:
    """Prompts -> :class:`EncodedPrompt` for one tokenizer and token table (word tokenisations cached)."""

    def __init__(self, table: TokenTable, tokenizer: Any, max_tokens: int = 77) -> None:
        self.table = table
        self.tokenizer = tokenizer
        self.max_tokens = max_tokens
        self._cache: dict[str, tuple[int, ...]] = {}

    def _clip_ids(self, word: str) -> tuple[int, ...]:
        if word not in self._cache:
            self._cache[word] = tuple(int(i) for i in self.tokenizer(word, add_special_tokens=False).input_ids)
        return self._cache[word]

    def encode(self, prompt: str) -> EncodedPrompt:
        t = self.table
        v = t.vocab_size
        body: list[tuple[int, bool]] = []
        for word, role in split_prompt(prompt, t.and_token):
            if role == SPECIAL:
                body.append((v + t.special["<and>"], False))
            elif (role, word) in t.word_rows:
                body.extend((v + row, True) for row in t.word_rows[(role, word)])
            else:
                body.extend((clip_id, True) for clip_id in self._clip_ids(word))
        body = body[: self.max_tokens - 2]
        ids = [v + t.special["<BoS>"], *(i for i, _ in body), v + t.special["<EoS>"]]
        content = [False, *(c for _, c in body), False]
        pad = self.max_tokens - len(ids)
        return EncodedPrompt(tuple(ids + [v + t.special["<pad>"]] * pad), tuple(content + [False] * pad))

    def batch(self, prompts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(ids, content)`` tensors of shape ``(B, max_tokens)``."""
        encoded = [self.encode(p) for p in prompts]
        return (torch.tensor([e.ids for e in encoded], dtype=torch.long),
                torch.tensor([e.content for e in encoded], dtype=torch.bool))


class Codebook(nn.Module):
    """The codebook: frozen rows in a buffer, the trainable (location) rows as the only parameter."""

    def __init__(self, init: torch.Tensor, trainable_rows: Sequence[int]) -> None:
        super().__init__()
        self.register_buffer("frozen", init.detach().clone())
        self.register_buffer("rows", torch.tensor(list(trainable_rows), dtype=torch.long))
        self.trainable = nn.Parameter(init.detach()[self.rows].clone())

    def weight(self) -> torch.Tensor:
        """The full ``(K, D)`` codebook with the current trainable rows."""
        return self.frozen.index_copy(0, self.rows, self.trainable)


class CodebookTokenEmbedding(nn.Module):
    """Drop-in for CLIP's token embedding: ids ``< V`` -> CLIP's (frozen) rows, ``V + r`` -> codebook row r."""

    def __init__(self, base: nn.Embedding, codebook: Codebook) -> None:
        super().__init__()
        self.base = base
        self.codebook = codebook
        self.vocab_size = base.num_embeddings

    @property
    def weight(self) -> torch.Tensor:
        return self.base.weight

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        is_row = ids >= self.vocab_size
        plain = self.base(ids.masked_fill(is_row, 0))
        rows = self.codebook.weight()[(ids - self.vocab_size).clamp(min=0)]
        return torch.where(is_row.unsqueeze(-1), rows.to(plain.dtype), plain)


def install_codebook(text_model: nn.Module, table: TokenTable, weight: torch.Tensor | None = None) -> Codebook:
    """Put a codebook into a ``CLIPTextModel`` (initialised from CLIP, or ``weight``); returns it."""
    embeddings = text_model.text_model.embeddings
    base = embeddings.token_embedding
    if isinstance(base, CodebookTokenEmbedding):
        base = base.base
    if base.num_embeddings != table.vocab_size:
        raise CxrdataError(f"CLIP has {base.num_embeddings} token embeddings, the codebook expects "
                           f"{table.vocab_size}: another tokenizer or text encoder")
    init = base.weight.detach()[torch.tensor([r.clip_id for r in table.rows])].float()
    if weight is not None:
        if tuple(weight.shape) != tuple(init.shape):
            raise CxrdataError(f"codebook weight has shape {tuple(weight.shape)}, expected {tuple(init.shape)}")
        init = weight.detach().float().to(init.device)
    codebook = Codebook(init, table.trainable_rows).to(base.weight.device)
    embeddings.token_embedding = CodebookTokenEmbedding(base, codebook)
    return codebook


def save_embeddings(path: str | Path, codebook: Codebook, table: TokenTable, metadata: dict[str, str]) -> Path:
    """The tuned codebook as safetensors: tensor ``codebook`` (K x D) + token table and ``metadata``."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": EMBEDDINGS_FORMAT, "format_version": EMBEDDINGS_VERSION, "tokens": table.to_json(),
            **{k: str(v) for k, v in metadata.items()}}
    tmp = path.with_name(path.name + ".tmp")
    save_file({"codebook": codebook.weight().detach().float().cpu().contiguous()}, str(tmp), metadata=meta)
    tmp.replace(path)
    return path


def load_embeddings(path: str | Path) -> tuple[torch.Tensor, TokenTable, dict[str, str]]:
    """``(weight, table, metadata)`` of a file written by :func:`save_embeddings`."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CxrdataError(f"{path}: tuned embeddings not found")
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = dict(fh.metadata() or {})
            weight = fh.get_tensor("codebook")
    except Exception as exc:  # safetensors raises its own error types
        raise CxrdataError(f"{path}: not a safetensors codebook ({exc})") from None
    if meta.get("format") != EMBEDDINGS_FORMAT:
        raise CxrdataError(f"{path}: not a cxrdata LDM codebook (format {meta.get('format')!r})")
    return weight, TokenTable.from_json(meta["tokens"]), meta
