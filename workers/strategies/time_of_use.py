"""`time_of_use`: trade at tariff rates that depend on the time of day (a CSV file or inline table).

The table is read and checked when the params are validated, so decide() stays pure and a bad
file fails the fleet at load time with the line and column to fix.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from pydantic import PrivateAttr, model_validator

from workers.strategies.base import AssetView, Decision, MarketView, NoState
from workers.strategies.orders import asset_orders
from workers.strategies.params import OrderParams, Rate, StrategyParams
from workers.strategies.schedule import DailySchedule, TimeOfDay, minute_of_day

COLUMNS = ("time", "buy_rate", "sell_rate")
Rates = tuple[float, float]  # (buy_rate, sell_rate)
Parsed = TypeVar("Parsed")


class RateRow(StrategyParams):
    time: TimeOfDay
    buy_rate: Rate
    sell_rate: Rate


class TimeOfUseParams(OrderParams):
    """Exactly one of `csv_path` (header time;buy_rate;sell_rate) or `table`; rows hold from
    their time until the next row, repeating daily."""

    csv_path: str | None = None
    table: tuple[RateRow, ...] | None = None
    _schedule: DailySchedule[Rates] = PrivateAttr()

    @model_validator(mode="after")
    def _load_schedule(self) -> TimeOfUseParams:
        if self.csv_path is not None and self.table is None:
            self._schedule = DailySchedule.build(read_rate_csv(self.csv_path))
            return self
        if self.table is None or self.csv_path is not None:
            raise ValueError("give exactly one of csv_path (a CSV file) or table (inline rows)")
        try:
            self._schedule = DailySchedule.build(
                (minute_of_day(row.time), (row.buy_rate, row.sell_rate)) for row in self.table
            )
        except ValueError as error:
            raise ValueError(f"table: {error}") from None
        return self

    def rates_at(self, slot: str) -> Rates:
        """(buy_rate, sell_rate) in force when `slot` starts."""
        return self._schedule.at(slot)


def read_rate_csv(path: str) -> list[tuple[int, Rates]]:
    """(minute of day, (buy_rate, sell_rate)) per row; ValueError names the file, line and column.

    The separator is ';' or ',' (taken from the header); with ';' a decimal comma is accepted.
    """
    where = f"time_of_use CSV {path!r}"
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as error:
        raise ValueError(f"{where}: cannot read it ({error.strerror or error})") from None
    lines = [(number, line) for number, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if not lines:
        raise ValueError(f"{where} is empty; expected the header {';'.join(COLUMNS)}")
    header_number, header = lines[0]
    separator = ";" if ";" in header else ","
    names = [name.strip().lower() for name in next(csv.reader([header], delimiter=separator))]
    if sorted(names) != sorted(COLUMNS):
        raise ValueError(
            f"{where} line {header_number}: header must be {';'.join(COLUMNS)} "
            f"(';' or ',' separated), got {header.strip()!r}"
        )
    parse_rate = _rate_parser(decimal_comma=separator == ";")
    entries: list[tuple[int, Rates]] = []
    first_line: dict[int, int] = {}
    for number, line in lines[1:]:
        cells = next(csv.reader([line], delimiter=separator))
        if len(cells) != len(COLUMNS):
            raise ValueError(
                f"{where} line {number}: expected {len(COLUMNS)} columns separated by {separator!r}, got {len(cells)}"
            )
        row = dict(zip(names, cells, strict=True))
        minute = _cell(where, number, "time", row["time"], minute_of_day)
        if minute in first_line:
            raise ValueError(
                f"{where} line {number}, column 'time': {row['time'].strip()} "
                f"already given on line {first_line[minute]}"
            )
        first_line[minute] = number
        rates = (
            _cell(where, number, "buy_rate", row["buy_rate"], parse_rate),
            _cell(where, number, "sell_rate", row["sell_rate"], parse_rate),
        )
        entries.append((minute, rates))
    if not entries:
        raise ValueError(f"{where} has a header but no rows")
    return entries


def _rate_parser(decimal_comma: bool) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text.strip().replace(",", ".") if decimal_comma else text)
        except ValueError:
            raise ValueError(f"expected a number, got {text.strip()!r}") from None
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"expected a finite rate >= 0 (ct/kWh), got {text.strip()!r}")
        return value

    return parse


def _cell(where: str, line: int, column: str, text: str, parse: Callable[[str], Parsed]) -> Parsed:
    """Parse one cell, prefixing errors with their position in the file."""
    try:
        return parse(text)
    except ValueError as error:
        raise ValueError(f"{where} line {line}, column {column!r}: {error}") from None


def decide(asset: AssetView, market: MarketView, params: TimeOfUseParams, state: NoState) -> Decision[NoState]:
    """Bid the needed energy at the slot's buy_rate and offer the spare energy at its sell_rate."""
    buy_rate, sell_rate = params.rates_at(market.slot)
    return Decision(commands=asset_orders(asset, sell_rate, buy_rate, params.min_energy), state=state)
