"""Writers of a chat export: Parquet ``messages`` shards (TRL), ShareGPT JSON Lines (LLaMA-Factory), LLaVA JSON.

``messages``: ``data/{split}-{i:05d}-of-{n:05d}.parquet`` in the ``chat-messages`` schema (written with the
build's shard writer: zstd row groups, a temporary name renamed into place, the Hugging Face features in the
schema metadata), the image as the build stored it (bytes or a path reference).
``sharegpt``: ``{split}.jsonl``, one ``{"messages": [{role, content}], "images": [path]}`` per line, the
prompt starting with ``<image>``; ``llava``: ``{split}.json``, a list of ``{"id", "image", "conversations":
[{from: human, value: "<image>\\n..."}, {from: gpt, ...}]}``. Both JSON forms reference image files: a
path-mode build's absolute paths, else the build's bytes written once per record under ``images/{split}/``
(paths relative to the export folder, LLaMA-Factory's ``media_dir`` and LLaVA's ``--image_folder``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, TextIO

from cxrdata.export.examples import Example
from cxrdata.io.schema import load_schema
from cxrdata.io.writer import ShardWriter, shard_name

FORMATS = ("messages", "llava", "sharegpt")
EXAMPLES_PER_SHARD = 5_000
IMAGE_TOKEN = "<image>"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def image_file_name(record_id: str, cell_path: str | None) -> str:
    """``<sanitised id>-<8 hex of the id>.<ext>``: safe, and distinct for ids that sanitise alike."""
    suffix = Path(cell_path or "").suffix.lower() or ".jpg"
    digest = hashlib.blake2b(record_id.encode(), digest_size=4).hexdigest()
    return f"{_UNSAFE.sub('_', record_id)}-{digest}{suffix}"


class ImageFiles:
    """Image references for the JSON formats (one file per record, written on first use)."""

    def __init__(self, dest: Path) -> None:
        self.dest = dest
        self.written: dict[str, str] = {}

    def reference(self, record_id: str, split: str, cell: dict[str, Any]) -> str:
        if cell.get("bytes") is None:
            return str(cell["path"])
        if record_id not in self.written:
            relative = f"images/{split}/{image_file_name(record_id, cell.get('path'))}"
            target = self.dest / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(cell["bytes"])
            self.written[record_id] = relative
        return self.written[record_id]


def _meta(example_id: str, record_id: str, split: str, example: Example) -> dict[str, Any]:
    return {"id": example_id, "record_id": record_id, "split": split, "task": example.task,
            "template_id": example.template_id, "answer_template_id": example.answer_template_id,
            "negative": example.negative}


class ExportWriter:
    """Appends conversations per split in one format; ``close()`` returns the files written, by split."""

    def __init__(self, dest: Path, fmt: str, source_config: str, box_format: str) -> None:
        self.dest, self.fmt, self.source_config, self.box_format = dest, fmt, source_config, box_format
        self.images = ImageFiles(dest)
        self._shards: dict[str, list[Path]] = {}
        self._open: dict[str, ShardWriter] = {}
        self._rows: dict[str, int] = {}
        self._json: dict[str, TextIO] = {}

    def add(self, example_id: str, record_id: str, split: str, example: Example, cell: dict[str, Any]) -> None:
        meta = _meta(example_id, record_id, split, example)
        if self.fmt == "messages":
            self._add_message(split, {**meta, "source_config": self.source_config, "box_format": self.box_format,
                                      "messages": [
                                          {"role": "user", "content": [{"type": "image", "text": None},
                                                                       {"type": "text", "text": example.prompt}]},
                                          {"role": "assistant", "content": [{"type": "text", "text": example.answer}]}],
                                      "images": [cell]})
            return
        image = self.images.reference(record_id, split, cell)
        extra = {**meta, "source_config": self.source_config, "box_format": self.box_format}
        if self.fmt == "sharegpt":
            item = {"messages": [{"role": "user", "content": IMAGE_TOKEN + example.prompt},
                                 {"role": "assistant", "content": example.answer}], "images": [image], **extra}
        else:
            item = {"id": example_id, "image": image, "conversations": [
                {"from": "human", "value": f"{IMAGE_TOKEN}\n{example.prompt}"},
                {"from": "gpt", "value": example.answer}], **{k: v for k, v in extra.items() if k != "id"}}
        self._add_json(split, item)

    def _add_message(self, split: str, row: dict[str, Any]) -> None:
        writer = self._open.get(split)
        if writer is None or self._rows[split] >= EXAMPLES_PER_SHARD:
            if writer is not None:
                self._close_shard(split)
            index = len(self._shards.setdefault(split, []))
            writer = self._open[split] = ShardWriter(self.dest / "data" / f".{split}-{index:05d}.parquet",
                                                     load_schema("chat-messages"))
            self._rows[split] = 0
        writer.write([row])
        self._rows[split] += 1

    def _close_shard(self, split: str) -> None:
        path = self._open.pop(split).close()
        if path is not None:
            self._shards[split].append(path)

    def _add_json(self, split: str, item: dict[str, Any]) -> None:
        handle = self._json.get(split)
        if handle is None:
            name = f"{split}.jsonl" if self.fmt == "sharegpt" else f"{split}.json"
            handle = self._json[split] = open(self.dest / name, "w", encoding="utf-8")  # noqa: SIM115
            if self.fmt == "llava":
                handle.write("[\n")
        elif self.fmt == "llava":
            handle.write(",\n")
        handle.write(json.dumps(item, ensure_ascii=False))
        if self.fmt == "sharegpt":
            handle.write("\n")

    def close(self) -> dict[str, list[str]]:
        """Finish every file; Parquet shards get their final ``-of-n`` names. Paths relative to the export."""
        files: dict[str, list[str]] = {}
        for split in list(self._open):
            self._close_shard(split)
        for split, paths in sorted(self._shards.items()):
            files[split] = []
            for i, path in enumerate(paths):
                final = path.with_name(shard_name(split, i, len(paths)))
                os.replace(path, final)
                files[split].append(final.relative_to(self.dest).as_posix())
        for split, handle in sorted(self._json.items()):
            if self.fmt == "llava":
                handle.write("\n]\n")
            handle.close()
            files[split] = [Path(handle.name).name]
        return files

    def abort(self) -> None:
        for writer in self._open.values():
            writer.abort()
        for handle in self._json.values():
            handle.close()


def dataset_info(files: dict[str, list[str]], fmt: str, name: str) -> dict[str, Any]:
    """LLaMA-Factory's ``dataset_info.json`` entries, one per split (its data/README.md, sharegpt format)."""
    if fmt == "sharegpt":
        entry = {"formatting": "sharegpt", "columns": {"messages": "messages", "images": "images"},
                 "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                          "assistant_tag": "assistant"}}
    else:
        entry = {"formatting": "sharegpt", "columns": {"messages": "conversations", "images": "image"}}
    return {f"{name}_{split}": {"file_name": paths[0], **entry} for split, paths in files.items()}


def card(dest: Path, files: dict[str, list[str]], fmt: str, summary: list[str], examples: dict[str, int]) -> str:
    """README.md whose ``configs:`` make ``datasets.load_dataset(EXPORT)`` find every split. Its
    ``dataset_info`` gives each split's conversations and file bytes: ``datasets`` caches a local folder under
    its name and a hash of this YAML (not of the files), so without them two exports both called ``x``
    would load as whichever was loaded first."""
    import yaml

    pattern = {"messages": "data/{split}-*.parquet"}.get(fmt, "{file}")
    data_files = [{"split": s, "path": pattern.format(split=s, file=paths[0])} for s, paths in files.items()]
    splits = [{"name": s, "num_bytes": sum((dest / p).stat().st_size for p in paths), "num_examples": examples[s]}
              for s, paths in files.items()]
    front = yaml.safe_dump({"configs": [{"config_name": "default", "data_files": data_files}],
                            "dataset_info": {"config_name": "default", "splits": splits},
                            "tags": ["medical", "chest-x-ray", "cxrdata", "chat"]}, sort_keys=False)
    return "\n".join(["---", front.rstrip(), "---", "", "# cxrdata chat export", "", *summary, ""])
