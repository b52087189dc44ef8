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


def test_semicolon_decimal_comma_and_tab_separated_files_read_like_commas(tmp_path):
    path, df = wide_csv(tmp_path, a=np.linspace(0.5, 3.25, 50), b=np.arange(50.0))
    reference = read_series(path)
    df.to_csv(tmp_path / "semi.csv", sep=";", decimal=",", index=False)     # European spreadsheet export
    df.to_csv(tmp_path / "tab.csv", sep="\t", index=False)
    assert "0,5" in (tmp_path / "semi.csv").read_text()
    for name in ("semi.csv", "tab.csv"):
        s = read_series(tmp_path / name)
        assert s.columns == ["a", "b"] and s.freq == "h"
        np.testing.assert_array_equal(s.values, reference.values)


def test_utc_offsets_that_change_with_daylight_saving_are_read_as_utc(tmp_path):
    local = pd.date_range("2021-03-27", periods=72, freq="h", tz="Europe/Berlin")   # 28 March: +01:00 -> +02:00
    df = pd.DataFrame({"date": local.astype(str), "a": np.arange(72.0)})
    assert {"+01:00", "+02:00"} <= {d[-6:] for d in df["date"]}
    df.to_csv(tmp_path / "dst.csv", index=False)
    s = read_series(tmp_path / "dst.csv")
    assert s.freq == "h" and str(s.dates.tz) == "UTC"
    assert (s.dates == local.tz_convert("UTC")).all()


@pytest.mark.parametrize("fmt", ["%d/%m/%Y %H:%M", "%d.%m.%Y"])
def test_day_first_dates_are_recognised(tmp_path, fmt):
    freq = "h" if "%H" in fmt else "D"
    dates = pd.date_range("2021-01-05", periods=400 if freq == "h" else 12, freq=freq)
    # 400 hours reach 21/01 (month-first fails there); 12 days stay ambiguous (every day <= 12):
    # month-first would read 05/01 .. 16/01 as irregular monthly dates and fail at 13/01
    df = pd.DataFrame({"date": dates.strftime(fmt), "a": np.arange(len(dates), dtype=float)})
    df.to_csv(tmp_path / "dmy.csv", index=False)
    s = read_series(tmp_path / "dmy.csv")
    assert (s.dates == dates).all() and s.freq == freq


def test_dates_that_read_regularly_both_ways_stay_month_first_unless_told(tmp_path):
    # 01/01/2021 .. 12/01/2021 is Jan 1-12 day-first and the 1st of every month month-first
    days = pd.date_range("2021-01-01", periods=12, freq="D")
    pd.DataFrame({"date": days.strftime("%d/%m/%Y"), "a": np.arange(12.0)}).to_csv(tmp_path / "d.csv", index=False)
    assert read_series(tmp_path / "d.csv").freq == "MS"                     # pandas' reading
    s = read_series(tmp_path / "d.csv", dayfirst=True)
    assert (s.dates == days).all() and s.freq == "D"
    # day-first hours whose month-first reading is irregular (1 Jan 00:00-23:00, then 1 Feb ...) but parses
    hours = pd.date_range("2021-01-01", "2021-01-12 23:00", freq="h")
    frame = pd.DataFrame({"date": hours.strftime("%d/%m/%Y %H:%M"), "a": np.arange(len(hours), dtype=float)})
    frame.to_csv(tmp_path / "h.csv", index=False)
    s = read_series(tmp_path / "h.csv")
    assert (s.dates == hours).all() and s.freq == "h"
