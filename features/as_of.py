"""The as-of date: the first day of a month; everything dated before it is known, nothing from it on.

Every feature is monthly (a month's bill, meter reading, discharge), so an as-of inside a month would
leave that month half known: the snapshot would find no "last month" row and the checks would read the
month's data. An as-of is therefore a month start, given as ``YYYY-MM-01``; and it is at most the first
day after the drop's last month (a later one would read the months the drop does not hold as months
without water).
"""

from __future__ import annotations

import re
from datetime import date

import pandas as pd

AS_OF_FORMAT = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def month_start(value) -> pd.Timestamp:
    """``value`` as a Timestamp at the first day of its month (library callers passing any day of a month
    get the month's own start: data of the months before it)."""
    ts = pd.Timestamp(value)
    return pd.Timestamp(ts.year, ts.month, 1)


def parse_as_of(value: str | date) -> pd.Timestamp:
    """An as-of given by a user: ``YYYY-MM-DD`` (or a date) naming the first day of a month; anything else is
    refused with a message saying what to write instead (a ValueError)."""
    if isinstance(value, date):  # a Timestamp or datetime too
        day = pd.Timestamp(value)
        text = f"{day:%Y-%m-%d}"
        if day != day.normalize():
            raise ValueError(f"as-of {day} is not a date: give the first day of a month, e.g. {text[:8]}01")
    else:
        text = str(value).strip()
        if not AS_OF_FORMAT.match(text):
            raise ValueError(
                f"as-of {text!r} is not a date written YYYY-MM-DD (the first day of a month, e.g. 2025-06-01)")
        try:
            day = pd.Timestamp(text)
        except ValueError as exc:
            raise ValueError(f"as-of {text!r} is not a valid date: {exc}") from None
    if day.day != 1:
        start = month_start(day)
        after = start + pd.DateOffset(months=1)
        raise ValueError(
            f"as-of {text} is not the first day of a month: features are monthly, so an as-of is a month start "
            f"(data of the months before it). Use {start:%Y-%m-%d} (data up to {start - pd.DateOffset(months=1):%Y-%m}) "
            f"or {after:%Y-%m-%d} (up to {start:%Y-%m})"
        )
    return day


def latest_as_of(last_month) -> pd.Timestamp:
    """The first day after the drop's last month: its default and latest as-of."""
    return month_start(last_month) + pd.DateOffset(months=1)


def check_within_drop(as_of: pd.Timestamp, latest: pd.Timestamp) -> None:
    """Refuse an as-of after ``latest`` (the first day after the drop's last month): the months between would
    read as months with no water at all."""
    if pd.Timestamp(as_of) > pd.Timestamp(latest):
        last = pd.Timestamp(latest) - pd.DateOffset(months=1)
        raise ValueError(
            f"as-of {pd.Timestamp(as_of):%Y-%m-%d} is after the drop's data: its last month is {last:%Y-%m}, so the "
            f"latest as-of is {pd.Timestamp(latest):%Y-%m-%d} (the default); months the drop does not hold would "
            "read as months without water"
        )
