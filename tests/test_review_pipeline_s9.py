"""Review of the deterministic supervision and the data path (session 9): each test is a defect found on
hand-made data with a known answer, failing before its fix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.compliance import permit_standing, use_outside_permit
from models.cases import build_cases
from models.rules import expired_permit_use, quota_warning, renewal_reminder, run_checks
from models.settings import RuleSettings
from test_rules import entity, make_tables, meter, permit

RULES = RuleSettings()
U1, U2 = "91371402MA0000001X", "91371402MA0000002X"


# -- a permit cancelled when its renewal was granted ------------------------------------------


def _renewed_and_given_up() -> dict[str, pd.DataFrame]:
    """U1's permit OLD ran to 2026-08-31 and was cancelled when its renewal NEW (from 2026-09-01) was granted:
    the register, a current snapshot, shows OLD as cancelled. Its meter was booked to OLD up to August, to NEW
    from September, as in the sample drop. U2's permit GONE was cancelled with no renewal, its meter runs on."""
    months = pd.date_range("2025-11-01", "2026-10-01", freq="MS")
    old = [meter("OLD", m.date().isoformat(), 1_000.0) for m in months if m < pd.Timestamp("2026-09-01")]
    new = [meter("NEW", m.date().isoformat(), 1_000.0) for m in months if m >= pd.Timestamp("2026-09-01")]
    for row in new:
        row["meter_id"] = "M-OLD"  # the same meter, booked to the new number
    gone = [meter("GONE", m.date().isoformat(), 1_000.0) for m in months]
    return make_tables(
        entities=[entity(U1), entity(U2)],
        permits=[permit("OLD", U1, quota=24_000.0, start="2021-09-01", end="2026-08-31", status="cancelled"),
                 permit("NEW", U1, quota=24_000.0, start="2026-09-01", end="2031-08-31"),
                 permit("GONE", U2, quota=24_000.0, start="2021-09-01", end="2027-08-31", status="cancelled")],
        abstraction=old + new + gone,
    )


def test_use_on_a_permit_cancelled_by_its_renewal_is_no_unpermitted_use():
    """Before: the months of OLD's own term in the last three were raised as red "状态为已注销 ... 涉嫌无有效许可取水"
    and opened an enforcement case (on the sample drop at 2026-11-01: 明汇金属's August, on the permit cancelled
    by its renewal from 2026-09-01); the renewal shows the cancellation came with it: OLD was in force."""
    tables = _renewed_and_given_up()
    as_of = pd.Timestamp("2026-11-01")
    alerts = expired_permit_use(tables, as_of, RULES)
    assert set(alerts["permit_id"]) == {"GONE"}
    cases = build_cases(tables, None, run_checks(tables, None, as_of, RULES), as_of, RULES)
    expired = cases[cases["kind"] == "expired_permit_in_use"] if len(cases) else cases
    assert set(expired["uscc"]) == {U2}


def test_a_permit_cancelled_by_its_renewal_stands_in_force_for_its_dates():
    """The profiles' permit state and the snapshot's withdrawn-permit volume read the same rule."""
    permits = _renewed_and_given_up()["permits"]
    at = np.array(["2026-08-15", "2026-09-15"], dtype="datetime64[s]")
    standing = permit_standing(permits, at)
    by_id = dict(zip(permits["permit_id"], range(len(permits))))
    assert standing["in_force"][by_id["OLD"]].tolist() == [True, False]
    assert not standing["withdrawn"][by_id["OLD"]].any()
    assert standing["withdrawn"][by_id["GONE"]].all() and not standing["in_force"][by_id["GONE"]].any()
    rows = pd.DataFrame({"permit_id": ["OLD", "GONE"], "month": pd.to_datetime(["2026-08-01", "2026-08-01"]),
                         "valid_to": pd.to_datetime(["2026-08-31", "2027-08-31"]), "status": "cancelled"})
    outside = use_outside_permit(rows, permits)
    assert outside["withdrawn"].tolist() == [False, True]


# -- renewal reminders --------------------------------------------------------------------------


def test_a_renewal_reminder_never_asks_for_an_application_by_a_deadline_already_past():
    """The application is due 45 days before expiry (取水许可和水资源费征收管理条例 第二十五条). Before, every reminder
    said "请于有效期届满45日前提出延续申请", also with 40 days left (on the sample drop at 2026-11-01: 合瑞纺织,
    剩余40天): a deadline five days gone. The reminder names the day, or says it has passed."""
    as_of = pd.Timestamp("2026-11-01")
    ends = {"P90": "2027-01-30", "P45": "2026-12-16", "P44": "2026-12-15", "P0": "2026-11-01"}
    tables = make_tables(entities=[entity(U1)], permits=[permit(pid, U1, end=end) for pid, end in ends.items()])
    alerts = renewal_reminder(tables, as_of, RULES)
    text = dict(zip(alerts["permit_id"], alerts["message"]))
    assert set(text) == set(ends)
    assert "请于2026年12月16日前（有效期届满45日前）提出延续申请" in text["P90"]  # 2027-01-30 less 45 days
    assert "请于2026年11月01日前（有效期届满45日前）提出延续申请" in text["P45"]  # the deadline is today
    for late in ("P44", "P0"):
        assert "请于" not in text[late] and "延续申请期限（有效期届满45日前）已过" in text[late]
        assert "请尽快提出延续申请" in text[late]


# -- ingest: Parquet date types -----------------------------------------------------------------


def _ingest_parquet(tmp_path, name: str, table) -> tuple[dict, pd.DataFrame]:
    import pyarrow.parquet as pq

    from features.contract import TABLES
    from features.ingest import ingest_table

    pq.write_table(table, tmp_path / f"{name}.parquet")
    done = ingest_table(TABLES[name], tmp_path / f"{name}.parquet", tmp_path / "typed.parquet")
    return done, pd.read_parquet(tmp_path / "typed.parquet")


def test_a_parquet_month_stored_as_a_date_is_that_month(tmp_path):
    """Parquet's own type for a calendar day is ``date``; a month written as its first day in that type was
    "not a month YYYY-MM" and the whole table went to quarantine (a timestamp was read)."""
    import datetime as dt

    import pyarrow as pa

    table = pa.table({
        "permit_id": ["P1", "P1"], "meter_id": ["M1", "M1"],
        "month": pa.array([dt.date(2025, 1, 1), dt.date(2025, 2, 1)], pa.date32()),
        "volume_m3": [10.0, 12.5], "reading": ["online", "manual"],
    })
    done, typed = _ingest_parquet(tmp_path, "abstraction", table)
    assert done["summary"] == {"read": 2, "accepted": 2, "quarantined": 0}
    assert typed["month"].tolist() == [pd.Timestamp("2025-01-01"), pd.Timestamp("2025-02-01")]
    assert done["last_month"] == pd.Timestamp("2025-02-01")


def test_a_parquet_timestamp_with_a_time_zone_is_its_local_date_not_a_crash(tmp_path):
    """A database export writes dates as timestamps with a zone (Asia/Shanghai). Before, ingest stopped with a
    bare TypeError from pandas, naming neither the file nor the column; the date is the one on the calendar
    where it was written, never shifted to UTC (2030-01-01 00:00+08:00 is 2029-12-31 in UTC)."""
    import pyarrow as pa

    def zoned(day: str):
        return pa.Array.from_pandas(pd.Series(pd.to_datetime([day]).tz_localize("Asia/Shanghai")))

    table = pa.table({
        "permit_id": ["P1"], "uscc": [U1], "holder_name": ["持证单位"], "source": ["surface"],
        "purpose": ["industrial"], "annual_quota_m3": [100.0],
        "valid_from": zoned("2020-01-01"), "valid_to": zoned("2030-01-01"), "status": ["valid"], "wells": [1],
    })
    done, typed = _ingest_parquet(tmp_path, "permits", table)
    assert done["summary"] == {"read": 1, "accepted": 1, "quarantined": 0}
    assert typed["valid_from"].iloc[0] == pd.Timestamp("2020-01-01")
    assert typed["valid_to"].iloc[0] == pd.Timestamp("2030-01-01")


# -- quota: a permit renewed in the middle of the year ----------------------------------------


def _renewal_year_tables():
    months = pd.date_range("2026-01-01", "2026-10-01", freq="MS")
    rows = [meter("OLD", m.date().isoformat(), 1_000.0) for m in months[:4]]
    rows += [dict(meter("NEW", m.date().isoformat(), 1_500.0), meter_id="M-OLD") for m in months[4:]]
    # U2: the same use on one permit all year, and a new firm's first permit granted in May
    rows += [meter("ONE", m.date().isoformat(), 1_000.0 if m < months[4] else 1_500.0) for m in months]
    rows += [meter("FIRST", m.date().isoformat(), 1_500.0) for m in months[4:]]
    return make_tables(
        entities=[entity(U1), entity(U2)],
        permits=[permit("OLD", U1, quota=12_000.0, start="2021-05-01", end="2026-04-30", status="cancelled"),
                 permit("NEW", U1, quota=12_000.0, start="2026-05-01", end="2031-04-30"),
                 permit("ONE", U2, quota=12_000.0),
                 permit("FIRST", U2, quota=12_000.0, source="surface", start="2026-05-01", end="2031-04-30")],
        abstraction=rows,
    )


def test_by_default_each_permit_is_coloured_on_its_own_year():
    """The default is the permit basis the province platform and ../shared/evaluation colour by: the renewal's
    9,000 m³ against its own 12,000 m³ (75 %, no colour), the cancelled permit none at all."""
    alerts = quota_warning(_renewal_year_tables(), None, pd.Timestamp("2026-11-01"), RULES).set_index("permit_id")
    assert "NEW" not in alerts.index and "OLD" not in alerts.index
    assert alerts.loc["ONE", "level"] == "red"


def test_a_renewal_in_the_middle_of_the_year_does_not_restart_the_years_quota():
    """With ``quota_year_across_renewal``: the renewal (延续) continues the same right: the year's use is the old permit's months and the new one's,
    against what the two allowed over the year (each annual quota for the days it ran). Before, the renewal's
    months alone were set against a whole year's quota and the old permit's months were forgotten: U1 drew
    4,000 + 9,000 = 13,000 m³ in ten months on a 12,000 m³ right and heard nothing (75 % of the renewal's
    quota); a holder could draw nearly two years' quota in the year of its renewal."""
    tables, rules = _renewal_year_tables(), RULES.model_copy(update={"quota_year_across_renewal": True})
    alerts = quota_warning(tables, None, pd.Timestamp("2026-11-01"), rules).set_index("permit_id")
    assert alerts.loc["NEW", "level"] == "red" and alerts.loc["ONE", "level"] == "red"  # both drew 13,000
    assert alerts.loc["NEW", "value"] == pytest.approx(13_000 / 12_000 * 100, abs=0.05)
    assert "含延续前许可证OLD" in alerts.loc["NEW", "message"]
    assert "FIRST" not in alerts.index  # a first permit keeps its year's quota: 9,000 of 12,000 is 75 %
    assert "OLD" not in alerts.index
    cases = build_cases(tables, None, run_checks(tables, None, pd.Timestamp("2026-11-01"), rules),
                        pd.Timestamp("2026-11-01"), rules)
    renewed = cases[(cases["kind"] == "quota_red") & (cases["permit_id"] == "NEW")].iloc[0]
    assert "累计取水1.3万m³（含延续前许可证OLD）" in renewed["evidence_text"]


# -- ingest: blank lines before the header ----------------------------------------------------


@pytest.mark.parametrize("quoted", [False, True], ids=["plain", "quoted"])
def test_blank_lines_before_the_header_are_no_rows(tmp_path, quoted):
    """Blank lines are no rows, before the header too (an export that left an empty title line). Before, the
    first blank line was taken for the header: the ingest stopped with "1 rows read where the record scan found
    3", naming no column, or refused the table as missing every column."""
    from features.contract import TABLES
    from features.ingest import ingest_table

    name = '"德州测试公司"' if quoted else "德州测试公司"
    text = ("\r\n  \r\n" + "uscc,year,planned_m3\r\n" + f"{U1},2025,100\r\n" + "\r\n" + f"{U2},2025,oops\r\n"
            if not quoted else
            "\n\nuscc,name,industry_code,district,address,registered_on,deregistered_on,employees,registered_capital_wan\n"
            f"{U1},{name},C1713,德城区,,,,,\n{U2},\"宏达, 分公司\",C1713,德城区,,,,,\n{U2}x,\"bad\"x,C1713,德城区,,,,,\n")
    table = "plans" if not quoted else "entities"
    (tmp_path / f"{table}.csv").write_text(text, encoding="utf-8")
    done = ingest_table(TABLES[table], tmp_path / f"{table}.csv", tmp_path / "typed.parquet")
    assert done["summary"] == {"read": 3 if quoted else 2, "accepted": 2 if quoted else 1, "quarantined": 1}
    bad = done["quarantine"].iloc[0]
    if quoted:  # the file's lines are counted from its first (blank) line: header = line 3
        assert (bad["row_number"], bad["column"]) == (3, "name") and "line 6" in bad["reason"]
    else:
        assert (bad["row_number"], bad["column"], bad["value"]) == (2, "planned_m3", "oops")
    typed = pd.read_parquet(tmp_path / "typed.parquet")
    assert typed["uscc"].tolist()[:2] == ([U1, U2] if quoted else [U1])
