"""Prompt and answer templates as data (``templates.yaml``), checked on load, chosen per record by a seed.

A group (``grounding``, ``dense-caption``, ``report``, ``vqa``, ``vqa-location``) has ``prompt``, ``answer``
and, where negatives exist, ``negative_answer`` lists of ``{id, text}``. Every text may use only its slot's
placeholders and must use the required one (a grounding prompt names the ``{phrase}``), so a rendered
conversation never keeps a ``{placeholder}``. The choice is a pure function of (seed, record id, example,
slot): BLAKE2b, stable across processes and machines (Python's ``hash`` is salted), never ``random.choice``.
"""

from __future__ import annotations

import hashlib
import string
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from cxrdata.errors import CxrdataError
from cxrdata.yamlfiles import load_yaml

# group -> slot -> (placeholders allowed, placeholders required)
PLACEHOLDERS: dict[str, dict[str, tuple[frozenset[str], frozenset[str]]]] = {
    "grounding": {"prompt": (frozenset({"phrase"}), frozenset({"phrase"})),
                  "answer": (frozenset({"boxes", "phrase"}), frozenset({"boxes"})),
                  "negative_answer": (frozenset({"finding"}), frozenset({"finding"}))},
    "dense-caption": {"prompt": (frozenset({"boxes"}), frozenset({"boxes"})),
                      "answer": (frozenset({"phrase"}), frozenset({"phrase"}))},
    "report": {"prompt": (frozenset(), frozenset()),
               "answer": (frozenset({"report"}), frozenset({"report"}))},
    "vqa": {"prompt": (frozenset({"finding"}), frozenset({"finding"})),
            "answer": (frozenset({"finding"}), frozenset()),
            "negative_answer": (frozenset({"finding"}), frozenset())},
    "vqa-location": {"prompt": (frozenset({"finding"}), frozenset({"finding"})),
                     "answer": (frozenset({"finding", "location"}), frozenset({"location"}))},
}


@dataclass(frozen=True)
class Template:
    id: str
    text: str

    def render(self, **values: str) -> str:
        return self.text.format(**values)


def placeholders(text: str) -> set[str]:
    """The ``{names}`` a format string uses (raises ValueError on a malformed one)."""
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def default_templates_path() -> Path:
    return Path(str(resources.files("cxrdata.export") / "templates.yaml"))


def parse_templates(doc: Any, where: str) -> dict[str, dict[str, tuple[Template, ...]]]:
    """Checked templates of a YAML document (one ``CxrdataError`` line per problem found first)."""
    if not isinstance(doc, dict) or set(doc) != set(PLACEHOLDERS):
        found = sorted(doc) if isinstance(doc, dict) else type(doc).__name__
        raise CxrdataError(f"{where}: expected the groups {', '.join(PLACEHOLDERS)}; found {found}")
    seen: set[str] = set()
    out: dict[str, dict[str, tuple[Template, ...]]] = {}
    for group, slots in PLACEHOLDERS.items():
        given = doc[group] if isinstance(doc[group], dict) else {}
        if set(given) != set(slots):
            raise CxrdataError(f"{where}: group {group!r} must have exactly {', '.join(slots)}")
        out[group] = {}
        for slot, (allowed, required) in slots.items():
            items = given[slot]
            if not isinstance(items, list) or not items:
                raise CxrdataError(f"{where}: {group}.{slot} must be a non-empty list of {{id, text}}")
            templates = []
            for item in items:
                if not isinstance(item, dict) or not isinstance(item.get("id"), str) or \
                        not isinstance(item.get("text"), str) or not item["text"].strip():
                    raise CxrdataError(f"{where}: {group}.{slot}: {item!r} is not {{id: ..., text: ...}}")
                if item["id"] in seen:
                    raise CxrdataError(f"{where}: template id {item['id']!r} is used twice")
                seen.add(item["id"])
                try:
                    names = placeholders(item["text"])
                except ValueError as exc:
                    raise CxrdataError(f"{where}: template {item['id']!r}: {exc}") from None
                if not names <= allowed or not required <= names:
                    raise CxrdataError(f"{where}: template {item['id']!r} uses {sorted(names)}; {group}.{slot} "
                                       f"allows {sorted(allowed)} and needs {sorted(required)}")
                templates.append(Template(item["id"], item["text"]))
            out[group][slot] = tuple(templates)
    return out


@cache
def load_templates(path: Path | None = None) -> dict[str, dict[str, tuple[Template, ...]]]:
    """The templates of ``path`` (default: the bundled ``templates.yaml``)."""
    path = path or default_templates_path()
    try:
        doc = load_yaml(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise CxrdataError(f"cannot read templates {path}: {exc}") from None
    return parse_templates(doc, str(path))


def unit(seed: int, *key: str) -> float:
    """A number in [0, 1) that depends only on ``seed`` and ``key``."""
    digest = hashlib.blake2b("\x1f".join((str(seed), *key)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2.0**64


def pick(templates: tuple[Template, ...], seed: int, *key: str) -> Template:
    """The template of ``templates`` that ``(seed, key)`` chooses."""
    return templates[int(unit(seed, *key) * len(templates))]
