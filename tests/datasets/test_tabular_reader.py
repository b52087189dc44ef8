"""CSV reader of sigplex.datasets.tabular: layouts, frequency, and one-line errors naming file and column."""
import numpy as np
import pytest

pd = pytest.importorskip("pandas")

from sigplex.core.errors import UserError
from sigplex.datasets.tabular import future_dates, read_series, write_series


def wide_csv(tmp_path, n=50, name="s.csv", freq="h", **cols):
    df = pd.DataFrame({"date": pd.date_range("2021-03-01", periods=n, freq=freq)})
    for k, v in (cols or {"a": np.arange(n, dtype=float), "b": np.arange(n, dtype=float) * 2}).items():
        df[k] = v
    path = tmp_path / name
    df.to_csv(path, index=False)
    return path, df


def test_wide_layout_reads_values_columns_and_frequency(tmp_path):
    path, df = wide_csv(tmp_path, freq="15min")
    s = read_series(path)
    assert s.columns == ["a", "b"] and s.layout == "wide" and s.freq == "15min"
    np.testing.assert_array_equal(s.values, df[["a", "b"]].to_numpy())
    assert s.dates[0] == pd.Timestamp("2021-03-01")


def test_unsorted_rows_are_sorted_by_date(tmp_path):
    path, df = wide_csv(tmp_path)
    df.iloc[::-1].to_csv(path, index=False)
    s = read_series(path)
    assert s.dates.is_monotonic_increasing
    np.testing.assert_array_equal(s.values[:, 0], np.arange(50.0))


def test_target_subset(tmp_path):
    path, _ = wide_csv(tmp_path, a=np.ones(50), b=np.zeros(50), c=np.arange(50.0))
    s = read_series(path, targets=["c", "a"])
    assert s.columns == ["c", "a"] and s.values.shape == (50, 2)


def test_missing_date_column_names_the_file(tmp_path):
    path = tmp_path / "nodate.csv"
    pd.DataFrame({"x": [1.0, 2.0], "y": [3.0, 4.0]}).to_csv(path, index=False)
    with pytest.raises(UserError, match=r"nodate\.csv: no date column.*data\.date_column"):
        read_series(path)
    with pytest.raises(UserError, match=r"nodate\.csv: date column 'when' not found"):
        read_series(path, date_column="when")


def test_non_numeric_column_names_column_value_and_line(tmp_path):
    path, df = wide_csv(tmp_path)
    df["b"] = df["b"].astype(object)
    df.loc[7, "b"] = "n/a?"
    df.to_csv(path, index=False)
    with pytest.raises(UserError, match=r"s\.csv: column 'b' is not numeric \(value 'n/a\?' on line 9\)"):
        read_series(path)


def test_bad_date_value_is_reported(tmp_path):
    path, df = wide_csv(tmp_path)
    df["date"] = df["date"].astype(str)
    df.loc[3, "date"] = "yesterday"
    df.to_csv(path, index=False)
    with pytest.raises(UserError, match=r"column 'date' value 'yesterday' on line 5 is not a date"):
        read_series(path)


def test_nans_are_errors_unless_filled(tmp_path):
    a = np.arange(50, dtype=float)
    a[[10, 11]] = np.nan
    path, _ = wide_csv(tmp_path, a=a, b=np.ones(50))
    with pytest.raises(UserError, match=r"column 'a' has 2 missing value\(s\).*data\.fill=ffill.*data\.fill=interpolate"):
        read_series(path)
    ff = read_series(path, fill="ffill")
    assert ff.values[10, 0] == 9.0 and ff.values[11, 0] == 9.0
    lin = read_series(path, fill="interpolate")
    np.testing.assert_allclose(lin.values[:, 0], np.arange(50.0))


def test_duplicate_timestamps_are_rejected(tmp_path):
    path, df = wide_csv(tmp_path)
    pd.concat([df, df.iloc[:1]]).to_csv(path, index=False)
    with pytest.raises(UserError, match="twice"):
        read_series(path)


def test_missing_file_and_unreadable_csv(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        read_series(tmp_path / "nope.csv")


def test_long_layout_round_trip(tmp_path):
    dates = pd.date_range("2022-01-01", periods=30, freq="D")
    long = pd.concat([pd.DataFrame({"unique_id": uid, "ds": dates, "y": np.arange(30.0) * k})
                      for k, uid in ((1, "north"), (3, "south"))], ignore_index=True)
    path = tmp_path / "long.csv"
    long.to_csv(path, index=False)
    s = read_series(path)
    assert s.layout == "long" and s.columns == ["north", "south"] and s.freq == "D"
    np.testing.assert_array_equal(s.values[:, 1], np.arange(30.0) * 3)
    out = write_series(s, tmp_path / "back.csv")
    back = pd.read_csv(out, parse_dates=["ds"])
    pd.testing.assert_frame_equal(back.sort_values(["unique_id", "ds"]).reset_index(drop=True),
                                  long.sort_values(["unique_id", "ds"]).reset_index(drop=True), check_dtype=False)
    with pytest.raises(UserError, match="already exists"):
        write_series(s, out)


def test_long_layout_errors(tmp_path):
    dates = pd.date_range("2022-01-01", periods=5, freq="D")
    df = pd.DataFrame({"unique_id": ["a"] * 5 + ["b"] * 3, "ds": list(dates) + list(dates[:3]), "y": range(8)})
    path = tmp_path / "ragged.csv"
    df.to_csv(path, index=False)
    with pytest.raises(UserError, match=r"ragged\.csv: series 'b' has 2 missing value"):
        read_series(path)
    dup = pd.concat([df, df.iloc[:1]])
    dup.to_csv(path, index=False)
    with pytest.raises(UserError, match="two rows for ds="):
        read_series(path)


def test_future_dates_continue_the_series():
    last = pd.Timestamp("2024-02-28 23:00")
    out = future_dates(last, "h", 3)
    assert list(out) == [pd.Timestamp("2024-02-29 00:00"), pd.Timestamp("2024-02-29 01:00"),
                         pd.Timestamp("2024-02-29 02:00")]
