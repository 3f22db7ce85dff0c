"""Time series ("profiles") of scenario assets: load power, PV power, smart-meter energy, rates.

A profile in a scenario (``gsy_local_exchange.scenario.Profile``) is one of

* a mapping ``{"HH:MM": value}`` - a **daily** profile, repeated every day, or
  ``{"YYYY-MM-DDTHH:MM": value}`` - an **absolute** profile (the two kinds cannot be mixed);
* a list of values, one per slot of a day starting at 00:00 (so exactly ``24 h / slot_length``
  values), repeated every day;
* the path of a CSV file (relative to the scenario file's directory) with the columns
  ``time;value`` or ``time,value``; a header line is optional, ``#`` starts a comment line and
  times are ``HH:MM`` (daily) or full date-times (absolute).

Every profile is a step function: a value holds from its key until the next key. In a daily
profile the last value of the day holds until the first key of the next day (so before the
first key of a day the previous day's last value applies). In an absolute profile moments
before the first key get the first value and moments after the last key the last value.

Moments are UTC. Naive datetimes are taken as UTC; aware ones are converted to UTC.
"""

from __future__ import annotations

import csv
import io
import math
import re
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from itertools import pairwise
from pathlib import Path
from typing import Any

__all__ = ["ProfileSeries", "average_over", "load_profile"]

_DAY_SECONDS = 86400.0
# Largest magnitude of a scenario number (rate, energy, power, fee): larger ones are typos, and
# would overflow slot energies, prices or day integrals to inf.
MAX_MAGNITUDE = 1e9
_TIME_OF_DAY = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}(?:\.\d+)?))?$")


def _naive_utc(moment: datetime) -> datetime:
    if moment.tzinfo is not None:
        return moment.astimezone(UTC).replace(tzinfo=None)
    return moment


class ProfileSeries:
    """A step function of time, built once; lookups and averages are O(log n).

    Build one with :meth:`daily`, :meth:`absolute` or :meth:`constant` (or :func:`load_profile`).
    """

    __slots__ = ("_cumulative", "_daily", "_day_integral", "_origin", "_times", "_values")

    def __init__(
        self, times: Sequence[float], values: Sequence[float], *, daily: bool, origin: datetime | None = None
    ) -> None:
        # times: seconds since 00:00 (daily) or since ``origin`` (absolute); strictly increasing.
        if not times:
            raise ValueError("profile is empty")
        if len(times) != len(values):
            raise ValueError("profile times and values differ in length")
        if any(later <= earlier for earlier, later in pairwise(times)):
            raise ValueError("profile times must be strictly increasing")
        self._daily = daily
        self._times = list(times)
        self._values = [float(value) for value in values]
        self._origin = origin
        # _cumulative[i] = integral (value x seconds) from the reference point to times[i];
        # the reference point is 00:00 (daily) or times[0] (absolute).
        cumulative = []
        if daily:
            total = self._values[-1] * self._times[0]  # the previous day's last value wraps around
        else:
            total = 0.0
        for index, start in enumerate(self._times):
            cumulative.append(total)
            end = self._times[index + 1] if index + 1 < len(self._times) else (_DAY_SECONDS if daily else start)
            total += self._values[index] * (end - start)
        self._cumulative = cumulative
        self._day_integral = total if daily else 0.0

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def daily(cls, points: Iterable[tuple[timedelta | float, float]]) -> ProfileSeries:
        """A daily profile from ``(time of day, value)`` pairs (timedelta or seconds, 0 <= t < 24 h)."""
        pairs = sorted(
            (
                (offset.total_seconds() if isinstance(offset, timedelta) else float(offset), value)
                for offset, value in points
            ),
            key=lambda pair: pair[0],
        )
        for offset, _ in pairs:
            if not 0 <= offset < _DAY_SECONDS:
                raise ValueError(f"time of day out of range: {offset} s")
        _reject_duplicates(pairs)
        return cls([offset for offset, _ in pairs], [value for _, value in pairs], daily=True)

    @classmethod
    def absolute(cls, points: Iterable[tuple[datetime, float]]) -> ProfileSeries:
        """An absolute profile from ``(moment, value)`` pairs."""
        pairs = sorted(((_naive_utc(moment), value) for moment, value in points), key=lambda pair: pair[0])
        _reject_duplicates(pairs)
        if not pairs:
            raise ValueError("profile is empty")
        origin = pairs[0][0]
        return cls(
            [(moment - origin).total_seconds() for moment, _ in pairs],
            [value for _, value in pairs],
            daily=False,
            origin=origin,
        )

    @classmethod
    def constant(cls, value: float) -> ProfileSeries:
        """The same value at every moment."""
        return cls([0.0], [value], daily=True)

    # -- queries --------------------------------------------------------------------------

    @property
    def is_daily(self) -> bool:
        """True when the profile repeats every day (``HH:MM`` keys or a per-slot list)."""
        return self._daily

    def __len__(self) -> int:
        return len(self._times)

    def __repr__(self) -> str:
        kind = "daily" if self._daily else f"absolute from {self._origin:%Y-%m-%dT%H:%M}"
        return f"<ProfileSeries {kind}, {len(self)} points>"

    def points(self) -> list[tuple[timedelta | datetime, float]]:
        """The breakpoints: ``(time of day, value)`` (daily) or ``(moment, value)`` (absolute)."""
        if self._daily:
            return [(timedelta(seconds=t), v) for t, v in zip(self._times, self._values, strict=True)]
        assert self._origin is not None
        return [(self._origin + timedelta(seconds=t), v) for t, v in zip(self._times, self._values, strict=True)]

    def _split(self, moment: datetime) -> tuple[int, float]:
        """``(day number, seconds)``: day ordinal and time of day (daily) or (0, seconds since origin)."""
        moment = _naive_utc(moment)
        if self._daily:
            seconds = moment.hour * 3600 + moment.minute * 60 + moment.second + moment.microsecond / 1e6
            return moment.toordinal(), seconds
        assert self._origin is not None
        return 0, (moment - self._origin).total_seconds()

    def _value_at_seconds(self, seconds: float) -> float:
        index = bisect_right(self._times, seconds) - 1
        if index < 0:
            # Daily: the previous day's last value; absolute: the first value.
            return self._values[-1] if self._daily else self._values[0]
        return self._values[index]

    def value_at(self, moment: datetime) -> float:
        """The value that holds at ``moment``."""
        return self._value_at_seconds(self._split(moment)[1])

    def _integral_to(self, seconds: float) -> float:
        """Integral of the step function from the reference point to ``seconds``."""
        index = bisect_right(self._times, seconds) - 1
        if index < 0:
            if self._daily:
                return self._values[-1] * seconds
            return self._values[0] * (seconds - self._times[0])  # negative before the origin
        return self._cumulative[index] + self._values[index] * (seconds - self._times[index])

    def integral(self, start: datetime, end: datetime) -> float:
        """Integral over ``[start, end)`` in value x seconds (negative if ``end < start``)."""
        day_start, seconds_start = self._split(start)
        day_end, seconds_end = self._split(end)
        return (
            (day_end - day_start) * self._day_integral
            + self._integral_to(seconds_end)
            - self._integral_to(seconds_start)
        )

    def average(self, start: datetime, length: timedelta) -> float:
        """Time-weighted mean over ``[start, start + length)``."""
        seconds = length.total_seconds()
        if seconds <= 0:
            raise ValueError(f"averaging window must be positive, got {length}")
        return self.integral(start, start + length) / seconds


def average_over(series: ProfileSeries, start: datetime, length: timedelta) -> float:
    """Time-weighted mean of ``series`` over ``[start, start + length)``.

    For a power profile in W, the energy of a slot in kWh is
    ``average_over(series, slot_start, slot_length) * slot_length_hours / 1000``.
    """
    return series.average(start, length)


# -- parsing --------------------------------------------------------------------------------


def _reject_duplicates(pairs: Sequence[tuple[Any, float]]) -> None:
    for (first, _), (second, _) in pairwise(pairs):
        if first == second:
            label = first.isoformat() if isinstance(first, datetime) else _format_offset(first)
            raise ValueError(f"profile has the time {label} more than once")


def _format_offset(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}" + (f":{secs:02d}" if secs else "")


def _parse_time(text: str) -> timedelta | datetime:
    """``HH:MM[:SS]`` -> time of day; ISO date-time (``T`` or space separated) -> moment."""
    text = text.strip()
    match = _TIME_OF_DAY.match(text)
    if match:
        hours, minutes = int(match.group(1)), int(match.group(2))
        seconds = float(match.group(3) or 0)
        if hours > 23 or minutes > 59 or seconds >= 60:
            raise ValueError(f"time of day out of range: {text!r}")
        return timedelta(hours=hours, minutes=minutes, seconds=seconds)
    if re.match(r"^\d{4}-\d{2}-\d{2}[T ]\d{1,2}:\d{2}", text):
        try:
            return _naive_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
        except (ValueError, OverflowError):  # OverflowError: the UTC moment is before year 1 or after 9999
            pass
    raise ValueError(f"cannot parse time {text!r} (expected HH:MM or YYYY-MM-DDTHH:MM)")


def _parse_value(raw: Any, *, decimal_comma: bool = False) -> float:
    if isinstance(raw, bool):
        raise ValueError(f"cannot parse value {raw!r} as a number")
    if isinstance(raw, str):
        text = raw.strip()
        if decimal_comma:
            text = text.replace(",", ".")
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"cannot parse value {raw!r} as a number") from None
    elif isinstance(raw, (int, float)):
        try:
            value = float(raw)
        except OverflowError:  # an integer beyond the float range
            raise ValueError(f"value {str(raw)[:12]}... is not a finite number") from None
    else:
        raise ValueError(f"cannot parse value {raw!r} as a number")
    if not math.isfinite(value):
        raise ValueError(f"value {raw!r} is not a finite number")
    if abs(value) > MAX_MAGNITUDE:
        raise ValueError(f"value {raw!r} is out of range (at most {MAX_MAGNITUDE:g} in magnitude)")
    return value


def _series_from_pairs(pairs: list[tuple[timedelta | datetime, float]], where: str) -> ProfileSeries:
    if not pairs:
        raise ValueError(f"{where}: profile is empty")
    kinds = {isinstance(time, datetime) for time, _ in pairs}
    if len(kinds) > 1:
        raise ValueError(f"{where}: profile mixes HH:MM times and full date-times")
    try:
        if kinds == {True}:
            return ProfileSeries.absolute(pairs)  # type: ignore[arg-type]
        return ProfileSeries.daily(pairs)  # type: ignore[arg-type]
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def _from_mapping(spec: Mapping[Any, Any]) -> ProfileSeries:
    pairs = []
    for key, raw in spec.items():
        try:
            pairs.append((_parse_time(str(key)), _parse_value(raw)))
        except ValueError as exc:
            raise ValueError(f"profile entry {str(key)!r}: {exc}") from None
    return _series_from_pairs(pairs, "profile")


def _from_list(spec: Sequence[Any], slot_length: timedelta) -> ProfileSeries:
    slot_seconds = slot_length.total_seconds()
    if slot_seconds <= 0:
        raise ValueError(f"slot length must be positive, got {slot_length}")
    slots_per_day = _DAY_SECONDS / slot_seconds
    if not spec:
        raise ValueError("profile is empty")
    if len(spec) != slots_per_day:
        raise ValueError(
            f"a list profile needs one value per slot of a day ({slots_per_day:g} values for "
            f'{slot_length} slots), got {len(spec)}; use a {{"HH:MM": value}} mapping for '
            "another resolution"
        )
    values = []
    for index, raw in enumerate(spec):
        try:
            values.append(_parse_value(raw))
        except ValueError as exc:
            raise ValueError(f"profile list item {index}: {exc}") from None
    return ProfileSeries([index * slot_seconds for index in range(len(values))], values, daily=True)


@lru_cache(maxsize=256)
def _read_csv(path: Path, _mtime_ns: int, _size: int) -> ProfileSeries:
    """Parse a CSV profile; cached per file version (the same file is often shared by assets)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError(f"profile file {path} is not UTF-8 text") from None
    lines = [
        (number, line)
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not lines:
        raise ValueError(f"profile file {path} is empty")
    delimiter = ";" if ";" in lines[0][1] else ","
    pairs: list[tuple[timedelta | datetime, float]] = []
    for position, (number, line) in enumerate(lines):
        cells = next(csv.reader(io.StringIO(line), delimiter=delimiter))
        while len(cells) > 2 and not cells[-1].strip():
            cells.pop()  # a trailing delimiter
        where = f"{path}:{number}"
        if len(cells) != 2:
            raise ValueError(f"{where}: expected 2 columns (time{delimiter}value), got {len(cells)}")
        try:
            time = _parse_time(cells[0])
        except ValueError as exc:
            if position == 0:
                try:
                    _parse_value(cells[1], decimal_comma=delimiter == ";")
                except ValueError:
                    continue  # a header line such as "time;value"
            raise ValueError(f"{where}: {exc}") from None
        try:
            value = _parse_value(cells[1], decimal_comma=delimiter == ";")
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
        pairs.append((time, value))
    if not pairs:
        raise ValueError(f"profile file {path} has no data lines")
    return _series_from_pairs(pairs, str(path))


def _from_file(spec: str, base_dir: Path) -> ProfileSeries:
    if not spec.strip():
        raise ValueError("profile file name is empty")
    try:
        path = Path(spec).expanduser()
    except RuntimeError:  # "~user" of an unknown user
        raise ValueError(f"profile file not found: {spec}") from None
    if not path.is_absolute():
        path = Path(base_dir) / path
    try:
        stat = path.stat()
    except OSError:
        raise ValueError(f"profile file not found: {path}") from None
    except ValueError:  # a NUL character
        raise ValueError(f"profile file name {spec!r} is not a valid path") from None
    if not path.is_file():
        raise ValueError(f"profile path is not a file: {path}")
    try:
        return _read_csv(path.resolve(), stat.st_mtime_ns, stat.st_size)
    except OSError as exc:
        raise ValueError(f"cannot read profile file {path}: {exc.strerror}") from None


def load_profile(
    spec: Any, base_dir: Path = Path("."), slot_length: timedelta = timedelta(minutes=15)
) -> ProfileSeries:
    """Build the step function of a scenario profile (mapping, per-slot list or CSV path).

    ``ValueError`` with a message naming the problem for a missing file, an unparsable time or
    value, a wrong list length or an empty profile.
    """
    if isinstance(spec, ProfileSeries):
        return spec
    if isinstance(spec, Mapping):
        return _from_mapping(spec)
    if isinstance(spec, str):
        return _from_file(spec, base_dir)
    if isinstance(spec, (list, tuple)):
        return _from_list(spec, slot_length)
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        return ProfileSeries.constant(_parse_value(spec))
    raise ValueError(f"a profile must be a mapping, a list or a CSV file path, not {type(spec).__name__}")
