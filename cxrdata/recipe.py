"""Recipes and options: one YAML reader for every recipe, and typed options from mappings.

An *options* class is a frozen dataclass whose fields, declared with :func:`option`, are the knobs of a
source, an image stage or a recipe stage. The same declaration becomes a command-line option
(``cxrdata.cli``), a recipe key, and a checked value (:func:`options_from`): an unknown key or a value
of the wrong type is one :class:`CxrdataError` naming where it came from, never a silent default.

A recipe is a YAML file under ``recipes/`` (or any path). Build recipes (:class:`BuildRecipe`) name the
datasets they apply to, their output config, source and image options and extra stages; training
recipes are nested sections checked against a template (:func:`check_template`). Either may start
with ``base: NAME`` and then hold only overrides of that recipe's keys.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, Field, dataclass, field, fields
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from cxrdata.errors import CxrdataError


def option(default: Any = MISSING, help: str = "", *, cli: bool = True, runtime: bool = False,
           choices: tuple[str, ...] | None = None, cli_name: str | None = None, show_default: bool = True,
           flag: str | None = None, bounds: tuple[Any, ...] | None = None) -> Any:
    """A field of an options class.

    ``runtime``: it changes how, not what, is built (a device, a cache folder), so it is left out of the
    configuration hash. ``cli``: whether it becomes a command-line option (``cli_name`` or the field name
    with dashes). ``flag``: for a bool, the ``--on/--off`` spelling. ``bounds``: ``(min, max[, max_open])``
    of a number (None: unbounded), checked on the command line and in recipes."""
    metadata = {"help": help, "cli": cli, "runtime": runtime, "choices": choices, "cli_name": cli_name,
                "show_default": show_default, "flag": flag, "bounds": bounds}
    return field(default=default, metadata=metadata)


def option_fields(cls: type) -> tuple[Field, ...]:
    return tuple(f for f in fields(cls) if f.init)


def option_name(f: Field) -> str:
    """The name an option goes by on the command line (with dashes) and in the Python API (with underscores)."""
    return (f.metadata.get("cli_name") or f.name).replace("-", "_")


def _types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _convert(value: Any, kind: Any, where: str) -> Any:
    """``value`` as ``kind`` (str, int, float, bool, Path, tuple[...], Literal, X | None) or CxrdataError."""
    origin, args = get_origin(kind), get_args(kind)
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _convert(value, arg, where)
            except CxrdataError as exc:
                errors.append(str(exc))
        raise CxrdataError(errors[0])
    if origin is Literal:
        if value not in args:
            raise CxrdataError(f"{where} must be one of {', '.join(map(str, args))}, got {value!r}")
        return value
    if origin is tuple:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise CxrdataError(f"{where} must be a list, got {value!r}")
        item = args[0] if args else str
        return tuple(_convert(v.strip() if isinstance(v, str) else v, item, where) for v in items)
    if kind is bool:
        if not isinstance(value, bool):
            raise CxrdataError(f"{where} must be true or false, got {value!r}")
        return value
    if kind in (int, float):
        if isinstance(value, bool) or not isinstance(value, int | float) or (kind is int and isinstance(value, float)):
            raise CxrdataError(f"{where} must be {'an integer' if kind is int else 'a number'}, got {value!r}")
        return kind(value)
    if kind is Path:
        if not isinstance(value, str | Path):
            raise CxrdataError(f"{where} must be a path, got {value!r}")
        return Path(value)
    if kind is str:
        if not isinstance(value, str):
            raise CxrdataError(f"{where} must be text, got {value!r}")
        return value
    if kind is Any:
        return value
    raise TypeError(f"unsupported option type {kind!r} ({where})")


def options_from(cls: type, values: Mapping[str, Any], where: str, base: Any = None) -> Any:
    """An instance of the options class ``cls`` from ``values`` (over ``base``'s values, else the defaults)."""
    known = {f.name: f for f in option_fields(cls)}
    unknown = [k for k in values if k not in known]
    if unknown:
        raise CxrdataError(f"{where}: unknown key(s) {', '.join(map(str, unknown))} (known: {', '.join(known)})")
    hints = _types(cls)
    kwargs = {name: getattr(base, name) for name in known} if base is not None else {}
    for name, value in values.items():
        kwargs[name] = _convert(value, hints[name], f"{where}: '{name}'")
        choices = known[name].metadata.get("choices")
        if choices and kwargs[name] is not None and kwargs[name] not in choices:
            raise CxrdataError(f"{where}: '{name}' must be one of {', '.join(choices)}, got {kwargs[name]!r}")
        _check_bounds(known[name].metadata.get("bounds"), kwargs[name], f"{where}: '{name}'")
    missing = [n for n, f in known.items() if n not in kwargs and f.default is MISSING
               and f.default_factory is MISSING]
    if missing:
        raise CxrdataError(f"{where}: missing {', '.join('--' + n.replace('_', '-') for n in missing)}")
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        raise CxrdataError(f"{where}: {exc}") from None


def _check_bounds(bounds: tuple[Any, ...] | None, value: Any, where: str) -> None:
    if not bounds or value is None:
        return
    low, high, high_open = (*bounds, False)[:3]
    if (low is not None and value < low) or (high is not None and (value >= high if high_open else value > high)):
        raise CxrdataError(f"{where} must be in [{low}, {high}{')' if high_open else ']'}, got {value}")


def described(options: Any) -> dict[str, Any]:
    """The options that decide the output (``runtime`` ones left out), as plain JSON values."""
    out = {}
    for f in option_fields(type(options)):
        if f.metadata.get("runtime"):
            continue
        value = getattr(options, f.name)
        out[f.name] = str(value) if isinstance(value, Path) else list(value) if isinstance(value, tuple) else value
    return out


# -- recipe files ------------------------------------------------------------------------------------------


def recipes_dir() -> Path:
    """``recipes/`` (it ships inside the package as ``cxrdata.recipes``, a link to the top-level folder)."""
    return Path(str(resources.files("cxrdata.recipes")))


def bundled_recipes() -> list[str]:
    return sorted(p.stem for p in recipes_dir().glob("*.yaml"))


def read_recipe(ref: str | Path, seen: tuple[Path, ...] = (), optional: frozenset[str] = frozenset()
                ) -> tuple[Path, dict[str, Any]]:
    """A recipe's path and mapping (bundled name or YAML path), its ``base`` chain merged in (``optional``:
    top-level sections a recipe may add to its base)."""
    import yaml  # here, not at the top: `cxrdata --help` imports this module and needs no YAML

    from cxrdata.yamlfiles import load_yaml

    path = Path(ref)
    if not path.suffix:
        if str(ref) not in bundled_recipes():
            raise CxrdataError(f"no recipe named {ref!r}; bundled: {', '.join(bundled_recipes())} "
                               "(or give a path to a .yaml file)")
        path = recipes_dir() / f"{ref}.yaml"
    if path in seen:
        raise CxrdataError(f"recipe {path}: 'base' chain loops")
    try:
        doc = load_yaml(path.read_text())
    except FileNotFoundError:
        raise CxrdataError(f"recipe file {path} not found") from None
    except (OSError, yaml.YAMLError) as exc:
        raise CxrdataError(f"recipe {path}: not readable YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(doc, dict):
        raise CxrdataError(f"recipe {path}: must be a YAML mapping")
    if "base" not in doc:
        return path, doc
    base_ref = doc.pop("base")
    base_ref = base_ref if Path(base_ref).suffix == "" or Path(base_ref).is_absolute() else path.parent / base_ref
    _, base = read_recipe(base_ref, (*seen, path), optional)
    return path, merge(base, doc, str(path), new_ok=frozenset({"name", "description", *optional}))


def merge(base: dict[str, Any], over: Mapping[str, Any], source: str, prefix: str = "",
          new_ok: frozenset[str] = frozenset({"name", "description"})) -> dict[str, Any]:
    """``over``'s values over ``base``'s, section by section; a key ``base`` lacks is an error."""
    out = dict(base)
    for key, value in over.items():
        name = f"{prefix}{key}"
        if key not in base and key not in new_ok:
            raise CxrdataError(f"recipe {source}: unknown key {name!r} (not in its base recipe)")
        if isinstance(value, Mapping) and isinstance(base.get(key), Mapping):
            out[key] = merge(dict(base[key]), value, source, f"{name}.", frozenset())
        else:
            out[key] = value
    return out


def check_template(doc: Mapping[str, Any], template: Mapping[str, Any], source: str, prefix: str = "") -> None:
    """``doc`` against a nested template whose leaves are types (a tuple of types; ``None`` in it allows null)."""
    for key in doc:
        if key not in template:
            raise CxrdataError(f"recipe {source}: unknown key {prefix}{key!r}")
    for key, kind in template.items():
        name = f"{prefix}{key}"
        if key not in doc:
            raise CxrdataError(f"recipe {source}: missing key {name!r}")
        value = doc[key]
        if isinstance(kind, Mapping):
            if not isinstance(value, Mapping):
                raise CxrdataError(f"recipe {source}: {name!r} must be a mapping")
            check_template(value, kind, source, f"{name}.")
            continue
        problem = leaf_problem(value, kind if isinstance(kind, tuple) else (kind,))
        if problem:
            raise CxrdataError(f"recipe {source}: {name!r} {problem}")


def leaf_problem(value: Any, kinds: tuple[Any, ...]) -> str | None:
    """Why ``value`` is not of the template types ``kinds`` (``None`` in them allows null), or None."""
    if value is None and None in kinds:
        return None
    allowed = tuple(k for k in kinds if k is not None)
    if float in allowed and isinstance(value, int) and not isinstance(value, bool):
        return None  # `lr: 1` is the number 1.0, as options_from reads it
    if (isinstance(value, bool) and bool not in allowed) or not isinstance(value, allowed):
        return f"must be {' or '.join(k.__name__ for k in allowed)}, got {value!r}"
    return None


# -- command-line settings (`train ... --set optim.lr=1e-4`) ---------------------------------------------------

_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _setting_value(text: str, kinds: tuple[Any, ...]) -> Any:
    """``text`` as YAML, read for a leaf of these types. A string leaf takes the text as written (``yes`` stays
    ``yes``); a number leaf also takes ``1e-4``, which YAML 1.1 (PyYAML) reads as a string."""
    import yaml

    from cxrdata.yamlfiles import load_yaml

    if str in kinds and not (None in kinds and text.strip() in ("null", "~", "")) and not (
            list in kinds and text.lstrip().startswith("[")):
        return text
    try:
        value = load_yaml(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str) and _NUMBER.fullmatch(text.strip()):
        value = float(text) if float in kinds or "." in text or "e" in text.lower() else int(text)
    if isinstance(value, int) and not isinstance(value, bool) and float in kinds and int not in kinds:
        value = float(value)
    return value


def apply_settings(doc: dict[str, Any], settings: Sequence[str], template: Mapping[str, Any],
                   source: str) -> dict[str, Any]:
    """Set each ``dotted.key=value`` of ``settings`` in ``doc`` (in place); returns them, parsed, by key.

    A key must name a leaf of ``template`` (or of a free-form section the recipe has); the value must have
    that leaf's type. Anything else is one CxrdataError naming the setting."""
    applied: dict[str, Any] = {}
    for setting in settings:
        key, sep, text = setting.partition("=")
        key = key.strip()
        if not sep or not key:
            raise CxrdataError(f"--set {setting!r}: write it KEY=VALUE, e.g. --set optim.lr=1e-4")
        parts = key.split(".")
        section: Any = doc
        kinds: Any = template
        for depth, part in enumerate(parts):
            known = kinds if isinstance(kinds, Mapping) else section  # in a free-form section: the recipe's keys
            if not isinstance(section, dict) or part not in known or part not in section:
                there = f" (keys there: {', '.join(sorted(known))})" if isinstance(known, Mapping) else ""
                raise CxrdataError(f"--set {key}: recipe {source} has no key {'.'.join(parts[:depth + 1])!r}{there}")
            kinds = kinds.get(part) if isinstance(kinds, Mapping) else None
            if depth < len(parts) - 1:
                section = section[part]
        leaf = parts[-1]
        if isinstance(kinds, Mapping) or (kinds is None and isinstance(section.get(leaf), Mapping)):
            raise CxrdataError(f"--set {key}: {key!r} is a section of recipe {source}; set one of its keys")
        if kinds is None or kinds is dict:  # a free-form section (e.g. `tiny`): the value keeps the recipe's type
            current = section.get(leaf)
            kinds = (type(current),) if current is not None else (str, int, float, bool, list, None)
        kinds = kinds if isinstance(kinds, tuple) else (kinds,)
        value = _setting_value(text, kinds)
        problem = leaf_problem(value, kinds)
        if problem:
            raise CxrdataError(f"--set {key}={text}: {key!r} {problem}")
        section[leaf] = value
        applied[key] = value
    return applied


# -- build recipes -----------------------------------------------------------------------------------------

_BUILD_KEYS = ("name", "description", "datasets", "output", "source", "image", "stages")


@dataclass(frozen=True)
class BuildRecipe:
    """A build: the datasets it applies to, its output config (``{config}`` stands for the dataset's own
    config name), source and image options, and the stages it adds, each with its options."""

    name: str
    description: str
    path: Path | None
    datasets: tuple[str, ...]
    output: str = "{config}"
    source: Mapping[str, Any] = field(default_factory=dict)
    image: Mapping[str, Any] = field(default_factory=dict)
    stages: tuple[tuple[str, Mapping[str, Any]], ...] = ()

    def output_config(self, config: str) -> str:
        return self.output.replace("{config}", config)


def is_build_recipe(doc: Mapping[str, Any]) -> bool:
    return "datasets" in doc and "output" in doc


@cache
def build_recipe_names() -> tuple[str, ...]:
    """The bundled build recipes (training recipes are not builds)."""
    from cxrdata.yamlfiles import load_yaml

    docs = {n: load_yaml((recipes_dir() / f"{n}.yaml").read_text()) for n in bundled_recipes()}
    return tuple(n for n, doc in docs.items() if isinstance(doc, dict) and is_build_recipe(doc))


def load_build_recipe(ref: str | Path) -> BuildRecipe:
    """A build recipe by bundled name or path, its top-level keys checked (sections are checked by the plan
    against the options of the source, the image stage and each stage)."""
    path, doc = read_recipe(ref)

    def fail(message: str) -> CxrdataError:
        return CxrdataError(f"recipe {path}: {message}")

    if not is_build_recipe(doc):
        raise fail("is not a build recipe (a build recipe names its 'datasets' and 'output')")
    unknown = [k for k in doc if k not in _BUILD_KEYS]
    if unknown:
        raise fail(f"unknown key(s) {', '.join(map(str, unknown))} (known: {', '.join(_BUILD_KEYS)})")
    datasets = doc["datasets"]
    if not isinstance(datasets, list) or not datasets or not all(isinstance(d, str) for d in datasets):
        raise fail(f"'datasets' must list the datasets it builds, got {datasets!r}")
    for section in ("source", "image"):
        if not isinstance(doc.get(section) or {}, Mapping):
            raise fail(f"'{section}' must be a mapping")
    stages = []
    for entry in doc.get("stages") or []:
        if isinstance(entry, str):
            entry = {entry: {}}
        if not isinstance(entry, Mapping) or len(entry) != 1:
            raise fail(f"each of 'stages' is a stage name, or a mapping of one stage name to its options: {entry!r}")
        ((name, values),) = entry.items()
        if not isinstance(values or {}, Mapping):
            raise fail(f"options of stage {name!r} must be a mapping")
        stages.append((str(name), dict(values or {})))
    return BuildRecipe(name=str(doc.get("name") or path.stem), description=str(doc.get("description") or ""),
                       path=path, datasets=tuple(datasets), output=str(doc["output"]),
                       source=dict(doc.get("source") or {}), image=dict(doc.get("image") or {}), stages=tuple(stages))


def default_recipe(dataset: str) -> BuildRecipe:
    """The build of ``cxrdata build DATASET`` without ``--recipe``: the dataset's own config, no extra stage."""
    return BuildRecipe(name="default", description="", path=None, datasets=(dataset,))
