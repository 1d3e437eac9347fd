"""The RadGraph-XL extractor backend: the ``radgraph`` package's model, local weights only, batched.

Weights are read from ``<cache_dir>/<model_type>/`` (``config.json``, ``vocabulary/``, ``weights.th``:
the unpacked ``StanfordAIMI/RRG_scorers/<model_type>.tar.gz``); cxrdata checks that folder itself and
never lets radgraph download. The base BERT named in ``config.json`` is loaded with the Hugging Face hub
in offline mode, so it must be in the local Hugging Face cache (or ``model_name`` must be a local folder).

Entities keep RadGraph's granularity and tokenisation (``wordpunct``: "2.5" is three tokens). RadGraph
labels anatomy word by word: "Left lower lobe atelectasis." gives three ANAT-DP entities "Left",
"lower", "lobe" at tokens 0, 1, 2 — the first two with a ``modify`` relation to "lobe" — and an OBS-DP
"atelectasis" ``located_at`` "lobe". ``extract`` returns them as they are, with inclusive token spans;
``join_adjacent`` (on entities) and ``anatomy_phrases`` (on radgraph's output, using ``modify`` too)
turn them into phrases such as "Left lower lobe" for the location mapper.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import io
import itertools
import json
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from cxrdata.errors import CxrdataError
from cxrdata.text.entities import ANAT_DP, Entity

logger = logging.getLogger(__name__)

HF_REPO = "StanfordAIMI/RRG_scorers"
MODEL_TYPES = ("radgraph", "radgraph-xl", "modern-radgraph-xl", "echograph")
DEFAULT_MODEL_TYPE = "radgraph-xl"
DEVICES = ("auto", "cpu", "cuda")

# Normalised labels (RadGraph v1 spelling). Measurement entities ("2 cm above", "5 mm") keep their
# kind and certainty but are told apart, so they never become location or finding candidates.
ANAT_U, ANAT_DA = "ANAT-U", "ANAT-DA"
OBS_DP, OBS_U, OBS_DA = "OBS-DP", "OBS-U", "OBS-DA"
_KINDS = {"anatomy": "ANAT", "observation": "OBS"}
_CERTAINTIES = {"definitely present": "DP", "uncertain": "U", "definitely absent": "DA"}


def normalise_label(label: str) -> str:
    """RadGraph-XL's ``Kind::certainty`` (or ``Kind::measurement::certainty``) in v1 spelling.

    ``Anatomy::definitely present`` → ``ANAT-DP``; ``Observation::measurement::uncertain`` →
    ``OBS-MEAS-U``. v1 labels (``OBS-DA``) and anything unknown are returned unchanged.
    """
    parts = [p.strip().lower() for p in label.split("::")]
    if len(parts) not in (2, 3) or parts[0] not in _KINDS or parts[-1] not in _CERTAINTIES:
        return label
    if len(parts) == 3 and parts[1] != "measurement":
        return label
    middle = "-MEAS" if len(parts) == 3 else ""
    return f"{_KINDS[parts[0]]}{middle}-{_CERTAINTIES[parts[-1]]}"


def entities_from_annotation(annotation: Mapping[str, Any]) -> list[Entity]:
    """Entities of one radgraph output dict (``{"text", "entities": {"1": {...}}}``), in its order."""
    entities = annotation.get("entities") or {}
    return [
        Entity(text=e["tokens"], label=normalise_label(e["label"]), start=int(e["start_ix"]),
               end=int(e["end_ix"]))
        for _, e in sorted(entities.items(), key=lambda kv: int(kv[0]))
    ]


def join_adjacent(entities: Sequence[Entity], label: str = ANAT_DP) -> list[Entity]:
    """Merge entities with ``label`` whose token spans touch or overlap into one phrase entity.

    Only ``label`` entities are returned, ordered by start: three ANAT-DP "Left" (0), "lower" (1),
    "lobe" (2) become ANAT-DP "Left lower lobe" (0-2).
    """
    chosen = sorted((e for e in entities if e.label == label), key=lambda e: (e.start, e.end))
    groups: list[list[Entity]] = []
    for e in chosen:
        if groups and e.start <= max(g.end for g in groups[-1]) + 1:
            groups[-1].append(e)
        else:
            groups.append([e])
    return [_phrase(group, label) for group in groups]


def anatomy_phrases(annotation: Mapping[str, Any], label: str = ANAT_DP) -> list[Entity]:
    """Group the ``label`` entities of one radgraph output into phrases: entities are joined when their
    spans touch or overlap, or when one ``modify``-es the other.

    A phrase's span runs from its first to its last token; when ``modify`` joins words that are not
    next to each other ("left and right lower lobes"), its text lists only the grouped words.
    """
    raw = annotation.get("entities") or {}
    keys = [k for k in raw if normalise_label(raw[k]["label"]) == label]
    parent = {k: k for k in keys}

    def find(k: str) -> str:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    def union(a: str, b: str) -> None:
        parent[find(a)] = find(b)

    for k in keys:
        for relation, target in raw[k].get("relations", []):
            if relation == "modify" and target in parent:
                union(k, target)
    spans = sorted(keys, key=lambda k: (raw[k]["start_ix"], raw[k]["end_ix"]))
    for a, b in itertools.pairwise(spans):
        if raw[b]["start_ix"] <= raw[a]["end_ix"] + 1:
            union(a, b)
    groups: dict[str, list[Entity]] = {}
    for k in spans:
        groups.setdefault(find(k), []).append(
            Entity(raw[k]["tokens"], label, int(raw[k]["start_ix"]), int(raw[k]["end_ix"])))
    return sorted((_phrase(g, label) for g in groups.values()), key=lambda e: (e.start, e.end))


def _phrase(group: Sequence[Entity], label: str) -> Entity:
    words: dict[int, str] = {}
    for e in group:
        for offset, word in enumerate(e.text.split()):
            words.setdefault(e.start + offset, word)
    return Entity(" ".join(words[i] for i in sorted(words)), label, min(words), max(words))


# -- the model files ---------------------------------------------------------------------------------


def radgraph_version() -> str:
    """The installed radgraph package's version, or a CxrdataError saying how to install it."""
    try:
        return importlib.metadata.version("radgraph")
    except importlib.metadata.PackageNotFoundError:
        raise CxrdataError(
            "the RadGraph extractor needs the optional dependencies: pip install 'cxrdata[radgraph]' "
            "(radgraph==0.1.18, transformers>=4.50,<5, torch)"
        ) from None


def default_cache_dir() -> Path:
    """radgraph's own default model cache: ``appdirs.user_cache_dir("radgraph")/<radgraph version>``."""
    try:
        from appdirs import user_cache_dir
    except ImportError:
        base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "radgraph"
    else:
        base = Path(user_cache_dir("radgraph"))
    return base / radgraph_version()


def check_model_dir(cache_dir: Path | str, model_type: str = DEFAULT_MODEL_TYPE) -> Path:
    """Return ``<cache_dir>/<model_type>`` if it holds a complete model, else raise a CxrdataError that
    names the missing files and how to put them there. Reads only; creates nothing."""
    if model_type not in MODEL_TYPES:
        choices = ", ".join(MODEL_TYPES)
        raise CxrdataError(f"unknown RadGraph model type {model_type!r}; choose one of {choices}")
    model_dir = Path(cache_dir).expanduser() / model_type
    vocab = model_dir / "vocabulary"
    required = {
        "config.json": model_dir / "config.json",
        "vocabulary/non_padded_namespaces.txt": vocab / "non_padded_namespaces.txt",
        f"vocabulary/{model_type}__ner_labels.txt": vocab / f"{model_type}__ner_labels.txt",
        f"vocabulary/{model_type}__relation_labels.txt": vocab / f"{model_type}__relation_labels.txt",
        "weights.th": model_dir / "weights.th",
    }
    missing = [name for name, path in required.items() if not path.is_file() or path.stat().st_size == 0]
    if missing:
        archive = f"{model_type}.tar.gz"
        raise CxrdataError(
            f"RadGraph model files missing or empty in {model_dir}: {', '.join(missing)}. cxrdata never "
            f"downloads them: on a machine with internet, download {archive} from the Hugging Face repo "
            f"{HF_REPO} (e.g. `huggingface-cli download {HF_REPO} {archive}`), unpack it with "
            f"`mkdir -p {model_dir} && tar -xzf {archive} -C {model_dir}` so that config.json, "
            f"vocabulary/ and weights.th lie directly in it, and pass --radgraph-cache {model_dir.parent}"
        )
    return model_dir


def _read_config(model_dir: Path) -> dict[str, Any]:
    try:
        config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
        _base_models(config)  # the fields radgraph reads must exist
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CxrdataError(f"{model_dir / 'config.json'} is not a RadGraph (DyGIE) config: {exc!r}") from None
    return config


def _base_models(config: Mapping[str, Any]) -> list[str]:
    names = [config["dataset_reader"]["token_indexers"]["bert"]["model_name"],
             config["model"]["embedder"]["token_embedders"]["bert"]["model_name"]]
    return list(dict.fromkeys(names))


def _check_base_model(name: str, config_path: Path) -> None:
    """The base model must be a local folder or already in the Hugging Face cache."""
    hint = (f"put it in the local Hugging Face cache (on a machine with internet: `huggingface-cli download "
            f"{name}`, then copy the cache folder), or point the two model_name fields of {config_path} at "
            "a local folder holding its config.json and tokenizer files")
    if os.path.isabs(name) or name.startswith((".", "~")) or os.path.isdir(name):
        if not (Path(name).expanduser() / "config.json").is_file():
            raise CxrdataError(f"RadGraph's base model folder {name} (named in {config_path}) has no "
                               f"config.json; {hint}")
        return
    from huggingface_hub import try_to_load_from_cache

    if not isinstance(try_to_load_from_cache(name, "config.json"), str):
        raise CxrdataError(f"RadGraph's base model {name!r} (named in {config_path}) is not in the local "
                           f"Hugging Face cache and cxrdata works offline; {hint}")


def model_fingerprint(model_dir: Path) -> str:
    """sha256 (first 12 hex digits) of config.json, the vocabulary files and weights.th."""
    digest = hashlib.sha256()
    files = [model_dir / "config.json", *sorted(p for p in (model_dir / "vocabulary").glob("*.txt")),
             model_dir / "weights.th"]
    for path in files:
        digest.update(path.relative_to(model_dir).as_posix().encode() + b"\0")
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:12]


@contextlib.contextmanager
def offline_hub() -> Iterator[None]:
    """Hugging Face hub and transformers in offline mode (the env vars, and the flags both libraries
    read from them at import time), restored afterwards."""
    saved_env = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    flags: list[tuple[Any, str, Any]] = []
    try:
        os.environ.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
        import huggingface_hub.constants as hub_constants
        import transformers.utils.hub as tf_hub

        for module, attr in ((hub_constants, "HF_HUB_OFFLINE"), (tf_hub, "_is_offline_mode")):
            if hasattr(module, attr):
                flags.append((module, attr, getattr(module, attr)))
                setattr(module, attr, True)
        yield
    finally:
        for module, attr, value in flags:
            setattr(module, attr, value)
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _resolve_device(device: str) -> int:
    """radgraph's ``cuda`` argument (-1 = CPU) for cxrdata's auto / cpu / cuda / cuda:N."""
    import torch

    if device == "cpu":
        return -1
    if device == "auto":
        return 0 if torch.cuda.is_available() else -1
    if device == "cuda" or device.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise CxrdataError(f"device {device!r} asked for, but torch sees no CUDA GPU; use --device cpu")
        try:
            index = int(device.partition(":")[2] or 0)
        except ValueError:
            raise CxrdataError(f"unknown device {device!r}; choose auto, cpu, cuda or cuda:N") from None
        if index >= torch.cuda.device_count():
            count = torch.cuda.device_count()
            raise CxrdataError(f"device {device!r} asked for, but torch sees {count} GPU(s)")
        return index
    raise CxrdataError(f"unknown device {device!r}; choose auto, cpu, cuda or cuda:N")


# -- the extractor -----------------------------------------------------------------------------------


class RadGraphExtractor:
    """The Extractor protocol over the radgraph package's model, batched (``radgraph_batch``).

    The constructor checks the model files and fingerprints them (``version``) without loading;
    ``load()`` (called by the first ``extract``) loads the model offline. A sentence radgraph fails on
    gives an empty entity list, its index in ``last_errors`` (index → reason) and a logged warning;
    ``n_failed`` counts them over the extractor's life. Blank sentences give no entities and no error.
    ``threads`` sets torch's CPU threads at load (process-wide); on a shared or busy CPU, 1 thread per
    worker process avoids the large slow-down of oversubscribed torch threads.
    """

    def __init__(self, cache_dir: Path | str | None = None, model_type: str = DEFAULT_MODEL_TYPE,
                 device: str = "auto", batch_size: int = 32, threads: int | None = None) -> None:
        if device not in DEVICES and not device.startswith("cuda:"):
            raise CxrdataError(f"unknown device {device!r}; choose auto, cpu, cuda or cuda:N")
        package_version = radgraph_version()
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        self.model_type = model_type
        self.model_dir = check_model_dir(self.cache_dir, model_type)
        self.config = _read_config(self.model_dir)
        self.device = device
        self.batch_size = batch_size
        self.threads = threads
        self.name = "radgraph-xl" if model_type == "radgraph-xl" else f"radgraph:{model_type}"
        self.version = f"radgraph-{package_version}+{model_fingerprint(self.model_dir)}"
        self.last_errors: dict[int, str] = {}
        self.n_failed = 0
        self._runner: Any = None

    def __getstate__(self) -> dict[str, Any]:
        """Pickles without the loaded model (workers call ``load()`` themselves)."""
        state = dict(self.__dict__)
        state["_runner"] = None
        return state

    def load(self) -> None:
        """Load the model once, from local files only."""
        if self._runner is not None:
            return
        config_path = self.model_dir / "config.json"
        cuda = _resolve_device(self.device)
        if self.threads:
            import torch

            torch.set_num_threads(self.threads)  # process-wide: one per worker when workers share cores
        with offline_hub():
            for name in _base_models(self.config):
                _check_base_model(name, config_path)
            from radgraph import RadGraph

            from cxrdata.extract.radgraph_batch import BatchedRadGraph

            try:
                with contextlib.redirect_stdout(io.StringIO()):  # it prints "Using device: …"
                    model = RadGraph(
                        model_type=self.model_type, model_cache_dir=str(self.cache_dir), cuda=cuda
                    )
            except PermissionError as exc:
                raise CxrdataError(f"cannot load RadGraph from {self.model_dir}: {exc} (its vocabulary/ "
                                   "folder must be writable: the loader puts a lock file there)") from None
            except Exception as exc:  # a user-supplied model: any failure here is theirs to fix
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                raise CxrdataError(
                    f"cannot load RadGraph from {self.model_dir}: {type(exc).__name__}: {first}"
                ) from None
        self._runner = BatchedRadGraph(model, batch_size=self.batch_size)
        logger.info("loaded %s %s on %s", self.name, self.version, model.device)

    def annotate(self, sentences: Sequence[str]) -> list[dict[str, Any] | None]:
        """radgraph's own output dict per sentence (``text``, ``entities`` with ``relations``); None
        where radgraph failed (reason in ``last_errors``) and an empty one for a blank sentence."""
        self.load()
        annotations: list[dict[str, Any] | None] = [
            {"text": "", "entities": {}, "data_source": None, "data_split": "inference"} for _ in sentences
        ]
        todo = [i for i, s in enumerate(sentences) if s and s.strip()]
        result = self._runner([sentences[i] for i in todo])
        self.last_errors = {todo[j]: reason for j, reason in result.errors.items()}
        self.n_failed += len(self.last_errors)
        for j, i in enumerate(todo):
            annotations[i] = result.annotations[j]
        return annotations

    def extract(self, sentences: Sequence[str]) -> list[list[Entity]]:
        """One list of entities per sentence, in input order (empty when none or when radgraph failed)."""
        return [entities_from_annotation(a) if a is not None else [] for a in self.annotate(sentences)]
