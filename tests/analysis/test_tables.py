"""The report's tables as files (analysis.tables): CSV with typed Parquet beside it, read back as
written, trial ids that look like numbers kept as text, a column of mixed types as text."""

from __future__ import annotations

import pandas as pd

from analysis.tables import _write_table, read_table


def test_typed_tables_survive_a_column_of_mixed_types(tmp_path):
    frame = pd.DataFrame({"trial_id": ["91781970", "12e45678"], "bits": [32, "fp32"]})
    written = _write_table(frame, tmp_path / "t.csv")
    assert [p.name for p in written] == ["t.csv", "t.parquet"]
    back = read_table(tmp_path / "t.csv")
    assert back["trial_id"].tolist() == ["91781970", "12e45678"]
    assert back["bits"].tolist() == ["32", "fp32"]


def test_a_typed_table_keeps_its_types(tmp_path):
    frame = pd.DataFrame({"trial_id": ["007", "1e3"], "bits": [8, 32], "lr": [0.1, None]})
    _write_table(frame, tmp_path / "t.csv")
    back = read_table(tmp_path / "t.csv")
    assert back["trial_id"].tolist() == ["007", "1e3"]  # a CSV reader would make 7 and 1000.0
    assert back["bits"].tolist() == [8, 32] and str(back["bits"].dtype) == "int64"
    assert back["lr"].iloc[0] == 0.1 and pd.isna(back["lr"].iloc[1])
