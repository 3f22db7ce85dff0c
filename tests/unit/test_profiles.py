"""Profiles: step-wise lookup, daily repetition, averages, CSV parsing and error messages."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gsy_local_exchange.profiles import ProfileSeries, average_over, load_profile

PROFILES = Path(__file__).resolve().parents[2] / "gsy_local_exchange" / "scenarios" / "profiles"
DAY = datetime(2021, 7, 1)
SLOT = timedelta(minutes=15)


def at(hour: int, minute: int = 0, day: int = 1) -> datetime:
    return datetime(2021, 7, day, hour, minute)


# -- daily mappings ---------------------------------------------------------------------------


def test_daily_mapping_is_step_wise() -> None:
    series = load_profile({"06:00": 100, "18:00": 300}, Path("."), SLOT)
    assert series.is_daily
    assert series.value_at(at(6)) == 100  # a key starts its value
    assert series.value_at(at(17, 59)) == 100
    assert series.value_at(at(18)) == 300
    assert series.value_at(at(23, 59)) == 300


def test_daily_mapping_wraps_before_the_first_key() -> None:
    series = load_profile({"06:00": 100, "18:00": 300}, Path("."), SLOT)
    # The previous day's last value holds until the first key of the day.
    assert series.value_at(at(0)) == 300
    assert series.value_at(at(5, 59)) == 300


def test_daily_mapping_repeats_every_day() -> None:
    series = load_profile({"00:00": 1, "12:00": 2}, Path("."), SLOT)
    for day in (1, 2, 15, 31):
        assert series.value_at(at(11, 59, day)) == 1
        assert series.value_at(at(12, 0, day)) == 2
    assert series.value_at(datetime(2030, 2, 3, 13)) == 2


def test_daily_keys_are_sorted_and_accept_short_hours_and_seconds() -> None:
    series = load_profile({"18:00": 3, "6:00": 1, "12:00:30": 2}, Path("."), SLOT)
    assert series.value_at(at(12)) == 1
    assert series.value_at(DAY.replace(hour=12, second=30)) == 2
    assert [value for _, value in series.points()] == [1, 2, 3]


def test_aware_moments_are_converted_to_utc() -> None:
    series = load_profile({"00:00": 1, "12:00": 2}, Path("."), SLOT)
    berlin_summer = timezone(timedelta(hours=2))
    # 13:00 at UTC+2 is 11:00 UTC.
    assert series.value_at(datetime(2021, 7, 1, 13, tzinfo=berlin_summer)) == 1
    assert series.value_at(datetime(2021, 7, 1, 12, tzinfo=UTC)) == 2


# -- absolute mappings ------------------------------------------------------------------------


def test_absolute_mapping_clamps_before_first_and_after_last() -> None:
    series = load_profile({"2021-07-01T06:00": 1, "2021-07-02T06:00": 3}, Path("."), SLOT)
    assert not series.is_daily
    assert series.value_at(datetime(2020, 1, 1)) == 1
    assert series.value_at(at(6)) == 1
    assert series.value_at(at(5, 59, day=2)) == 1
    assert series.value_at(at(6, 0, day=2)) == 3
    assert series.value_at(datetime(2030, 1, 1)) == 3


def test_absolute_keys_may_use_a_space_seconds_and_an_offset() -> None:
    series = load_profile({"2021-07-01 06:00:00": 1, "2021-07-01T12:00+02:00": 2}, Path("."), SLOT)
    assert series.value_at(at(9, 59)) == 1
    assert series.value_at(at(10)) == 2  # 12:00+02:00 is 10:00 UTC


def test_mixing_daily_and_absolute_keys_is_rejected() -> None:
    with pytest.raises(ValueError, match="mixes HH:MM times and full date-times"):
        load_profile({"06:00": 1, "2021-07-01T06:00": 2}, Path("."), SLOT)


# -- lists ------------------------------------------------------------------------------------


def test_list_has_one_value_per_slot_and_repeats_daily() -> None:
    values = list(range(96))
    series = load_profile(values, Path("."), SLOT)
    assert series.is_daily
    assert series.value_at(at(0)) == 0
    assert series.value_at(at(0, 14)) == 0
    assert series.value_at(at(0, 15)) == 1
    assert series.value_at(at(23, 50)) == 95
    assert series.value_at(at(23, 50, day=9)) == 95


def test_list_uses_the_slot_length() -> None:
    series = load_profile([10.0] * 12 + [20.0] * 12, Path("."), timedelta(hours=1))
    assert series.value_at(at(11, 59)) == 10
    assert series.value_at(at(12)) == 20


def test_list_of_the_wrong_length_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"one value per slot of a day \(96 values .* got 24"):
        load_profile([1.0] * 24, Path("."), SLOT)


# -- CSV files --------------------------------------------------------------------------------


def test_csv_with_semicolons_header_comments_and_relative_path(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "p.csv").write_text("\ufefftime;value\n# a comment\n00:00;1.5\n\n06:00;2,5\n18:00;3\n")
    series = load_profile("sub/p.csv", tmp_path, SLOT)
    assert series.value_at(at(5)) == 1.5
    assert series.value_at(at(6)) == 2.5  # decimal comma with the ';' delimiter
    assert series.value_at(at(20)) == 3


def test_csv_with_commas_no_header_absolute_times_and_absolute_path(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("2021-07-01T00:00,5\n2021-07-01T12:00,7,\n")
    series = load_profile(str(path), Path("/nonexistent"), SLOT)
    assert not series.is_daily
    assert series.value_at(at(11)) == 5
    assert series.value_at(at(13)) == 7


def test_csv_is_reread_when_the_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("00:00;1\n")
    assert load_profile("p.csv", tmp_path, SLOT).value_at(at(3)) == 1
    path.write_text("00:00;2.25\n")
    assert load_profile("p.csv", tmp_path, SLOT).value_at(at(3)) == 2.25


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("time;value\n08:00;1\nnoon;2\n", r"p\.csv:3: cannot parse time 'noon'"),
        ("08:00;1\n09:00;lots\n", r"p\.csv:2: cannot parse value 'lots'"),
        ("08:00;1\n25:00;2\n", r"p\.csv:2: time of day out of range"),
        ("08:00;1;2\n", r"p\.csv:1: expected 2 columns"),
        ("08:00;nan\n", r"not a finite number"),
        ("08:00;1\n8:00;2\n", r"time 08:00 more than once"),
        ("", r"p\.csv is empty"),
        ("time;value\n", r"p\.csv has no data lines"),
    ],
)
def test_bad_csv_files_name_file_line_and_problem(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "p.csv").write_text(content)
    with pytest.raises(ValueError, match=message):
        load_profile("p.csv", tmp_path, SLOT)


def test_missing_csv_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"profile file not found: .*nope\.csv"):
        load_profile("nope.csv", tmp_path, SLOT)


def test_directory_is_not_a_profile_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a file"):
        load_profile(".", tmp_path, SLOT)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({}, "profile is empty"),
        ([], "profile is empty"),
        ({"8 o'clock": 1}, r"entry \"8 o'clock\": cannot parse time"),
        ({"08:00": "x"}, r"entry '08:00': cannot parse value 'x'"),
        ({"08:00": True}, "cannot parse value True"),
        ([1.0] * 95 + ["?"], r"list item 95: cannot parse value '\?'"),
        (None, "must be a mapping, a list or a CSV file path"),
    ],
)
def test_bad_inline_profiles(spec: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_profile(spec, Path("."), SLOT)


# -- averages ---------------------------------------------------------------------------------


def test_average_within_one_step_is_the_value_and_gives_slot_energy() -> None:
    series = load_profile({"00:00": 200}, Path("."), SLOT)
    mean_w = average_over(series, at(12), SLOT)
    assert mean_w == 200
    assert mean_w * (SLOT.total_seconds() / 3600) / 1000 == pytest.approx(0.05)  # EXCHANGE.md 3.1


def test_average_is_time_weighted_across_steps() -> None:
    series = load_profile({"00:00": 0, "12:10": 300}, Path("."), SLOT)
    # [12:00, 12:15): 10 min of 0 W and 5 min of 300 W.
    assert average_over(series, at(12), SLOT) == pytest.approx(100)


def test_average_across_midnight_and_several_days() -> None:
    series = load_profile({"06:00": 100, "18:00": 300}, Path("."), SLOT)
    # 17:00 -> 07:00 next day: 1 h x 100, 12 h x 300, 1 h x 100.
    assert average_over(series, at(17), timedelta(hours=14)) == pytest.approx(3800 / 14)
    assert average_over(series, at(0), timedelta(days=3)) == pytest.approx(200)


def test_average_of_absolute_profile_uses_clamped_values_outside_the_keys() -> None:
    series = load_profile({"2021-07-01T06:00": 1, "2021-07-02T06:00": 3}, Path("."), SLOT)
    assert average_over(series, at(0), timedelta(hours=2)) == 1
    assert average_over(series, at(5, day=2), timedelta(hours=2)) == pytest.approx(2)
    assert average_over(series, at(0, day=5), timedelta(hours=2)) == 3


def test_average_needs_a_positive_window() -> None:
    series = ProfileSeries.constant(5)
    with pytest.raises(ValueError, match="must be positive"):
        average_over(series, at(0), timedelta(0))


@settings(max_examples=60, deadline=None)
@given(
    points=st.dictionaries(st.integers(0, 1439), st.integers(-500, 500), min_size=1, max_size=12),
    start_minute=st.integers(0, 3 * 1440),
    length_minutes=st.integers(1, 2 * 1440),
)
def test_average_matches_minute_by_minute_sum(points: dict[int, int], start_minute: int, length_minutes: int) -> None:
    spec = {f"{minute // 60:02d}:{minute % 60:02d}": value for minute, value in points.items()}
    series = load_profile(spec, Path("."), SLOT)
    start = DAY + timedelta(minutes=start_minute)
    # Keys are on whole minutes, so the value is constant within each minute.
    expected = sum(series.value_at(start + timedelta(minutes=m)) for m in range(length_minutes))
    expected /= length_minutes
    assert average_over(series, start, timedelta(minutes=length_minutes)) == pytest.approx(expected, abs=1e-6)


def test_lookups_on_a_year_long_profile_are_fast() -> None:
    origin = datetime(2021, 1, 1)
    series = ProfileSeries.absolute((origin + i * SLOT, float(i)) for i in range(365 * 96))
    started = time.perf_counter()
    for i in range(0, 365 * 96, 3):
        assert series.value_at(origin + i * SLOT + timedelta(minutes=1)) == i
    assert time.perf_counter() - started < 1.0


# -- bundled data -----------------------------------------------------------------------------


def test_bundled_household_profiles_have_realistic_daily_shapes() -> None:
    files = sorted(PROFILES.glob("household_L*.csv"))
    assert len(files) == 11
    shapes = set()
    for path in files:
        series = load_profile(path.name, PROFILES, SLOT)
        assert len(series) == 96
        values = [value for _, value in series.points()]
        assert 50 <= min(values) and max(values) <= 900
        night = average_over(series, at(2), timedelta(hours=2))
        morning = max(series.value_at(at(6, 30) + k * SLOT) for k in range(8))
        evening = max(series.value_at(at(18) + k * SLOT) for k in range(12))
        assert morning > 1.5 * night and evening > 1.5 * night, path.name
        shapes.add(tuple(values))
    assert len(shapes) == len(files)  # every household number has its own shape


def test_bundled_pv_profile_is_a_berlin_summer_day() -> None:
    series = load_profile("pv_berlin_summer_1kW.csv", PROFILES, SLOT)
    assert series.value_at(at(1)) == 0 and series.value_at(at(23)) == 0
    peak = max(value for _, value in series.points())
    assert 750 <= peak <= 850
    assert series.value_at(at(13)) > 700
    daily_kwh = average_over(series, at(0), timedelta(days=1)) * 24 / 1000
    assert 5 < daily_kwh < 9
