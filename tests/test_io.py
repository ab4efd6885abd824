"""Input readers and result writers."""

from __future__ import annotations

import csv
import json

import pytest

from verticals.core.io import InputError, flat_row, map_fields, read_rows, write_rows


def test_csv_jsonl_txt_parquet_read_the_same_rows(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rows = [{"id": "1", "text": "Shares rose"}, {"id": "2", "text": "Profit fell, sharply"}]
    (tmp_path / "a.csv").write_text('id,text\n1,Shares rose\n2,"Profit fell, sharply"\n', encoding="utf-8")
    (tmp_path / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + "\n", encoding="utf-8")
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "a.parquet")
    (tmp_path / "a.txt").write_text("Shares rose\n\nProfit fell, sharply\n", encoding="utf-8")
    assert list(read_rows(tmp_path / "a.csv")) == rows
    assert list(read_rows(tmp_path / "a.jsonl")) == rows
    assert list(read_rows(tmp_path / "a.parquet")) == rows
    assert list(read_rows(tmp_path / "a.txt")) == [{"text": r["text"]} for r in rows]


def test_bad_jsonl_line_is_reported_with_its_number(tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"text": "ok"}\n{"text": oops}\n', encoding="utf-8")
    with pytest.raises(InputError, match="line 2"):
        list(read_rows(tmp_path / "bad.jsonl"))


def test_unknown_extension_asks_for_format(tmp_path):
    (tmp_path / "x.dat").write_text("", encoding="utf-8")
    with pytest.raises(InputError, match="--format"):
        list(read_rows(tmp_path / "x.dat"))
    (tmp_path / "x.xlsx").write_bytes(b"PK\x03\x04")
    with pytest.raises(InputError, match="save the sheet as CSV"):
        list(read_rows(tmp_path / "x.xlsx"))


def test_field_mapping_and_single_column_default():
    rows = list(map_fields(iter([{"headline": "a"}, {"headline": "b"}]), {}, required="text"))
    assert rows[0]["text"] == "a"
    with pytest.raises(InputError, match="columns: a, b"):
        list(map_fields(iter([{"a": 1, "b": 2}]), {}, required="text"))
    with pytest.raises(InputError, match="'body'"):
        list(map_fields(iter([{"a": 1}]), {"text": "body"}, required="text"))


def test_writers_flatten_nested_outputs(tmp_path):
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rows = [{"seq": 0, "status": "succeeded", "input": {"text": "x"}, "error": None,
             "output": {"label": "positive", "probabilities": {"positive": 0.9}, "spans": [1, 2], "text": "X"}}]
    columns = list(flat_row(rows[0]))
    # an input column named like an output one is renamed, never the output: `text` is the task's result
    assert columns == ["seq", "input.text", "label", "probabilities.positive", "spans", "text", "status", "error"]
    write_rows(tmp_path / "o.csv", rows, columns)
    written = next(csv.DictReader((tmp_path / "o.csv").open()))
    assert written["probabilities.positive"] == "0.9" and written["spans"] == "[1, 2]" and written["text"] == "X"
    assert written["input.text"] == "x"
    write_rows(tmp_path / "o.parquet", rows, columns)
    assert pq.read_table(tmp_path / "o.parquet").to_pylist()[0]["label"] == "positive"
    write_rows(tmp_path / "o.jsonl", rows)
    assert json.loads((tmp_path / "o.jsonl").read_text())["output"]["probabilities"] == {"positive": 0.9}


def test_export_columns_in_schema_order_and_typed_parquet(tmp_path):
    pytest.importorskip("pyarrow")
    import pyarrow as pa
    import pyarrow.parquet as pq

    from verticals.core.io import flat_columns

    rows = [{"seq": 0, "status": "succeeded", "input": {"text": "a"}, "error": None,
             "output": {"count": 1, "score": 0.5, "ok": True, "mixed": 7}},
            {"seq": 1, "status": "succeeded", "input": {"text": "b"}, "error": None,  # "names": not in row 0
             "output": {"count": 2, "score": 1, "ok": False, "mixed": "x", "names": "n"}},
            {"seq": 2, "status": "failed", "input": {"text": "c"}, "error": "boom", "output": None}]
    columns, types = flat_columns(rows)
    assert columns == ["seq", "text", "count", "score", "ok", "mixed", "names", "status", "error"]
    assert types == {"seq": "int", "text": "string", "count": "int", "score": "float", "ok": "bool",
                     "mixed": "string", "names": "string", "status": "string", "error": "string"}
    write_rows(tmp_path / "o.parquet", rows, columns, types=types)
    table = pq.read_table(tmp_path / "o.parquet")
    assert table.schema.field("count").type == pa.int64() and table.schema.field("score").type == pa.float64()
    assert table.schema.field("ok").type == pa.bool_()
    assert table.to_pylist()[1] == {"seq": 1, "text": "b", "count": 2, "score": 1.0, "ok": False, "mixed": "x",
                                    "names": "n", "status": "succeeded", "error": None}
    assert table.to_pylist()[0]["mixed"] == "7" and table.to_pylist()[2]["error"] == "boom"


def test_a_huge_csv_field_is_read_and_the_process_csv_limit_is_left_alone(tmp_path):
    """verticals reads fields beyond the csv module's 131072-character limit without raising that limit for
    the application that embeds it (the limit is process-wide state of the csv module)."""
    limit = csv.field_size_limit()
    huge = "x" * (limit + 10_000)
    (tmp_path / "big.csv").write_text(f'id,text\n1,"{huge}"\n2,small\n', encoding="utf-8")
    reading = read_rows(tmp_path / "big.csv")
    first = next(reading)
    assert csv.field_size_limit() == limit  # unchanged while the file is being read
    rows = [first, *reading]
    assert [len(row["text"]) for row in rows] == [len(huge), 5]
    assert csv.field_size_limit() == limit  # and after
    with pytest.raises(csv.Error, match="field larger than field limit"):
        next(csv.reader([f'1,"{huge}"\n']))  # the embedding application's own readers keep their limit


def test_the_fallback_without_a_private_csv_module_restores_the_limit(tmp_path, monkeypatch):
    """Where no private _csv instance can be made, the shared limit is lifted only while a row is read."""
    import verticals.core.io as io_module

    monkeypatch.setattr(io_module, "_CSV", None)
    limit = csv.field_size_limit()
    lines = ["id,text\n", f'1,"{"y" * (limit + 1)}"\n', "2,b\n"]
    rows = list(io_module.iter_csv(lines, "lines"))
    assert [len(row["text"]) for row in rows] == [limit + 1, 1]
    assert csv.field_size_limit() == limit
    with pytest.raises(InputError, match="line 2"):  # strictness kept on this path
        list(io_module.iter_csv(['id,text\n', '1,"open\n', '2,b\n'], "lines"))
    assert csv.field_size_limit() == limit
