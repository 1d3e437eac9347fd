"""The writer and the schema files must agree; shards carry the Hugging Face features."""

import json

import datasets
import pyarrow.parquet as pq
import pytest

from cxrdata.io.schema import available, feature_to_arrow, load_schema
from cxrdata.io.writer import ShardWriter, shard_name, to_table


@pytest.mark.parametrize("name", available())
def test_schema_arrow_types_equal_what_datasets_derives(name):
    schema = load_schema(name)
    features = datasets.Features.from_dict(schema.features)
    assert features.arrow_schema.remove_metadata() == schema.arrow.remove_metadata()
    assert list(features) == schema.names
    assert all(c.doc for c in schema.columns), "every column is documented"


def test_shard_name_follows_the_hugging_face_convention():
    assert shard_name("train", 3, 16) == "train-00003-of-00016.parquet"


def _rejects_row(**overrides):
    row = {"config": "c", "record_id": "r1", "split": "train", "stage": "s", "reason": "x", "detail": "d"}
    return {**row, **overrides}


def test_writer_refuses_a_record_the_schema_does_not_know(tmp_path):
    schema = load_schema("rejects")
    with pytest.raises(ValueError, match="unexpected \\['surprise'\\]"):
        to_table([_rejects_row(surprise=1)], schema)
    with pytest.raises(ValueError, match="missing \\['detail'\\]"):
        to_table([{k: v for k, v in _rejects_row().items() if k != "detail"}], schema)


def test_private_keys_are_dropped(tmp_path):
    table = to_table([_rejects_row(_working="x")], load_schema("rejects"))
    assert table.column_names == load_schema("rejects").names


def test_shard_is_invisible_until_closed_and_carries_features(tmp_path):
    path = tmp_path / "rejects.parquet"
    writer = ShardWriter(path, load_schema("rejects"), row_group_size=2)
    writer.write([_rejects_row(record_id=f"r{i}") for i in range(5)])
    assert not path.exists() and writer.tmp_path.exists()
    writer.close()
    assert path.exists() and not writer.tmp_path.exists()
    parquet = pq.ParquetFile(path)
    assert parquet.metadata.num_rows == 5 and parquet.metadata.num_row_groups == 3
    features = json.loads(parquet.schema_arrow.metadata[b"huggingface"])["info"]["features"]
    assert features == load_schema("rejects").features


def test_aborted_shard_leaves_nothing(tmp_path):
    path = tmp_path / "x.parquet"
    with pytest.raises(RuntimeError), ShardWriter(path, load_schema("rejects"), row_group_size=1) as writer:
        writer.write([_rejects_row()])
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_an_empty_shard_writes_no_file(tmp_path):
    # datasets cannot read a Parquet file without rows, so none is written.
    assert ShardWriter(tmp_path / "e.parquet", load_schema("rejects")).close() is None
    assert list(tmp_path.iterdir()) == []


def test_feature_to_arrow_fixed_length_lists():
    feature = {"feature": {"dtype": "float32", "_type": "Value"}, "length": 4, "_type": "List"}
    assert str(feature_to_arrow(feature)) == "fixed_size_list<item: float>[4]"
