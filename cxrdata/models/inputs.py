"""What a model reads from built shards: which rows have an image, and a decoded image or one clear line."""

from __future__ import annotations

from typing import Any

from cxrdata.errors import CxrdataError, first_line


def rows_with_image(ds: Any, column: str = "image") -> list[bool]:
    """Per row of a shard dataset, whether its image cell holds something to decode (bytes, or a path), read from
    the Arrow validity bitmaps and offsets only (no image is decoded). A null cell, or one with neither bytes nor a
    path, is False."""
    import pyarrow as pa
    import pyarrow.compute as pc

    col = ds.data.column(column)
    if not pa.types.is_struct(col.type):
        return pc.is_valid(col).to_pylist()
    parts = []
    for chunk in col.chunks:
        has = pc.is_valid(chunk)
        if "bytes" in [f.name for f in chunk.type]:
            data = chunk.field("bytes")
            has_bytes = pc.and_(pc.is_valid(data), pc.greater(pc.binary_length(data), 0))
            has_path = pc.is_valid(chunk.field("path")) if "path" in [f.name for f in chunk.type] else has_bytes
            has = pc.and_(has, pc.or_(has_bytes, has_path))
        parts.extend(pc.fill_null(has, False).to_pylist())
    return parts


def undecodable(record: str, config: str, exc: BaseException) -> CxrdataError:
    """The one line for a stored image that does not decode."""
    return CxrdataError(f"record {record} of {config}: its image does not decode ({first_line(exc)}); "
                        "rebuild that output")


def decoded_row(dataset: Any, index: int, config: str) -> dict[str, Any]:
    """Row ``index`` with its image decoded; an image that does not decode is one line naming the record."""
    try:
        return dataset[index]
    except Exception as exc:  # PIL and datasets raise many types for bytes that do not decode
        raise undecodable(dataset.select_columns(["id"])[index]["id"], config, exc) from None
