"""A persistent cache of extractor results, so that reruns and resumes never recompute a sentence.

Rows are keyed by (extractor name, extractor version, sha256 of the sentence's UTF-8 text) and hold the
entities as JSON, in one SQLite file (WAL journal, busy timeout) that several worker processes may
read and write at once; each process opens its own connection (re-opened after a fork, dropped when
pickled). Keep the file on a local disk: SQLite's WAL mode does not work on network filesystems.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

from cxrdata.extract.base import Extractor
from cxrdata.text.entities import Entity

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entities (
    extractor TEXT NOT NULL,
    version TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    result TEXT NOT NULL,
    PRIMARY KEY (extractor, version, sha256)
) WITHOUT ROWID
"""
_CHUNK = 500


def sentence_key(sentence: str) -> str:
    """The cache key of a sentence: the hex sha256 of its UTF-8 text."""
    return hashlib.sha256(sentence.encode("utf-8")).hexdigest()


def _dump(entities: list[Entity]) -> str:
    return json.dumps([[e.text, e.label, e.start, e.end] for e in entities], separators=(",", ":"))


def _load(payload: str) -> list[Entity]:
    return [Entity(text, label, start, end) for text, label, start, end in json.loads(payload)]


class ExtractionCache:
    """Extractor results in one SQLite file, safe to share between processes."""

    def __init__(self, path: str | os.PathLike[str], timeout_s: float = 120.0) -> None:
        self.path = Path(path)
        self.timeout_s = timeout_s
        self._conn: sqlite3.Connection | None = None
        self._pid = -1

    @classmethod
    def in_dir(cls, out_dir: str | os.PathLike[str]) -> ExtractionCache:
        """The cache of a build: ``<out_dir>/cache/extract.sqlite``."""
        return cls(Path(out_dir) / "cache" / "extract.sqlite")

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=self.timeout_s, isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout = {int(self.timeout_s * 1000)}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute(_SCHEMA)
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    def get_many(self, name: str, version: str, keys: Iterable[str]) -> dict[str, list[Entity]]:
        """Cached results for the given sentence keys (missing keys are absent from the result)."""
        keys = list(dict.fromkeys(keys))
        conn, found = self._connection(), {}
        for i in range(0, len(keys), _CHUNK):
            chunk = keys[i : i + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = conn.execute(
                f"SELECT sha256, result FROM entities WHERE extractor = ? AND version = ? AND sha256 IN ({marks})",
                (name, version, *chunk),
            )
            found.update((key, _load(payload)) for key, payload in rows)
        return found

    def put_many(self, name: str, version: str, items: Iterable[tuple[str, list[Entity]]]) -> None:
        """Store results (one transaction; an existing row for the same key is kept)."""
        rows = [(name, version, key, _dump(entities)) for key, entities in items]
        if not rows:
            return
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany("INSERT OR IGNORE INTO entities VALUES (?, ?, ?, ?)", rows)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def count(self, name: str | None = None, version: str | None = None) -> int:
        """Number of cached sentences, optionally for one extractor (and version)."""
        sql, args = "SELECT COUNT(*) FROM entities WHERE 1 = 1", []
        if name is not None:
            sql, args = sql + " AND extractor = ?", [*args, name]
        if version is not None:
            sql, args = sql + " AND version = ?", [*args, version]
        return int(self._connection().execute(sql, args).fetchone()[0])

    def close(self) -> None:
        if self._conn is not None and self._pid == os.getpid():
            self._conn.close()
        self._conn = None

    def __getstate__(self) -> dict:
        return {"path": self.path, "timeout_s": self.timeout_s}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["path"], state["timeout_s"])


class CachedExtractor:
    """An :class:`~cxrdata.extract.base.Extractor` that looks results up before computing them.

    Only sentences missing from the cache reach the wrapped extractor (each distinct sentence once), and
    their results are stored before returning. ``hits`` and ``misses`` count sentences since creation.
    """

    def __init__(self, extractor: Extractor, cache: ExtractionCache) -> None:
        self.extractor = extractor
        self.cache = cache
        self.name = extractor.name
        self.version = extractor.version
        self.hits = 0
        self.misses = 0

    def extract(self, sentences: Sequence[str]) -> list[list[Entity]]:
        keys = [sentence_key(s) for s in sentences]
        found = self.cache.get_many(self.name, self.version, keys)
        todo = {key: sentence for key, sentence in zip(keys, sentences, strict=True) if key not in found}
        self.hits += len(sentences) - sum(1 for key in keys if key in todo)
        self.misses += sum(1 for key in keys if key in todo)
        if todo:
            results = self.extractor.extract(list(todo.values()))
            if len(results) != len(todo):
                raise RuntimeError(f"extractor {self.name} returned {len(results)} results for {len(todo)}")
            fresh = dict(zip(todo, results, strict=True))
            self.cache.put_many(self.name, self.version, fresh.items())
            found.update(fresh)
        return [list(found[key]) for key in keys]
