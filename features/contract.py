"""The department data contract, version 1, as data.

One ``TableSpec`` per table of ``shared/contract/README.md``. Ingest, the
synthetic generator and the tests all read these specs, so the contract lives
in exactly one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Column kinds and the pandas dtype each becomes after ingest.
KIND_DTYPES = {
    "text": "str",
    "date": "datetime64[s]",
    "month": "datetime64[s]",  # first day of the month
    "quarter": "str",  # kept as 'YYYY-Qn'; ingest adds <col>_start (datetime64[s])
    "decimal": "float64",
    "int": "Int64",
    "bool": "boolean",
}


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    kind: str
    required: bool = True  # False: an empty cell is allowed (NULL = unknown)
    allowed: tuple[str, ...] | None = None
    non_negative: bool = False

    @property
    def is_code(self) -> bool:
        """A code, not prose: the USCC, the industry class and every ``*_id`` (a key others join on)."""
        return self.kind == "text" and (self.name in ("uscc", "industry_code") or self.name.endswith("_id"))


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: tuple[ColumnSpec, ...]
    key: tuple[str, ...]
    optional: bool = False
    has_uscc: bool = field(default=False)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> ColumnSpec:
        return next(c for c in self.columns if c.name == name)


def _c(name, kind, required=True, allowed=None, non_negative=False):
    return ColumnSpec(name, kind, required, tuple(allowed) if allowed else None, non_negative)


VIOLATION_TYPES = (
    "unpermitted_abstraction",
    "private_well",
    "meter_tampering",
    "over_permit",
    "expired_permit",
    "tax_underreport",
)

TABLES: dict[str, TableSpec] = {
    t.name: t
    for t in [
        TableSpec(
            "entities",
            (
                _c("uscc", "text"),
                _c("name", "text"),
                _c("industry_code", "text"),
                _c("district", "text"),
                _c("address", "text", required=False),
                _c("registered_on", "date", required=False),
                _c("deregistered_on", "date", required=False),
                _c("employees", "int", required=False, non_negative=True),
                _c("registered_capital_wan", "decimal", required=False, non_negative=True),
            ),
            key=("uscc",),
            has_uscc=True,
        ),
        TableSpec(
            "projects",
            (
                _c("project_id", "text"),
                _c("uscc", "text", required=False),
                _c("project_name", "text", required=False),
                _c("kind", "text", allowed=("industrial", "real_estate", "infrastructure", "other")),
                _c("approved_on", "date"),
                _c("construction_start_on", "date", required=False),
                _c("district", "text", required=False),
                _c("dewatering", "bool", required=False),
                _c("expected_annual_water_m3", "decimal", required=False, non_negative=True),
            ),
            key=("project_id",),
            optional=True,
            has_uscc=True,
        ),
        TableSpec(
            "permits",
            (
                _c("permit_id", "text"),
                _c("uscc", "text"),
                _c("holder_name", "text", required=False),
                _c("source", "text", allowed=("surface", "groundwater")),
                _c("purpose", "text", allowed=("industrial", "domestic", "agriculture", "services", "dewatering")),
                _c("annual_quota_m3", "decimal", non_negative=True),
                _c("valid_from", "date"),
                _c("valid_to", "date"),
                _c("status", "text", allowed=("valid", "revoked", "cancelled")),
                _c("wells", "int", required=False, non_negative=True),
            ),
            key=("permit_id",),
            has_uscc=True,
        ),
        TableSpec(
            "plans",
            (_c("uscc", "text"), _c("year", "int"), _c("planned_m3", "decimal", non_negative=True)),
            key=("uscc", "year"),
            has_uscc=True,
        ),
        TableSpec(
            "abstraction",
            (
                _c("permit_id", "text"),
                _c("meter_id", "text"),
                _c("month", "month"),
                _c("volume_m3", "decimal", non_negative=True),
                _c("reading", "text", required=False, allowed=("online", "manual")),
            ),
            key=("meter_id", "month"),
        ),
        TableSpec(
            "supply",
            (
                _c("account_id", "text"),
                _c("account_name", "text", required=False),
                _c("address", "text", required=False),
                _c("uscc", "text", required=False),
                _c("month", "month"),
                _c("volume_m3", "decimal", non_negative=True),
            ),
            key=("account_id", "month"),
            has_uscc=True,
        ),
        TableSpec(
            "discharge",
            (
                _c("account_id", "text"),
                _c("account_name", "text", required=False),
                _c("address", "text", required=False),
                _c("uscc", "text", required=False),
                _c("month", "month"),
                _c("volume_m3", "decimal", non_negative=True),
                _c("measured", "bool", required=False),
            ),
            key=("account_id", "month"),
            has_uscc=True,
        ),
        TableSpec(
            "tax",
            (
                _c("uscc", "text"),
                _c("period", "quarter"),
                _c("source", "text", allowed=("surface", "groundwater")),
                _c("declared_m3", "decimal", non_negative=True),
                _c("tax_yuan", "decimal", required=False, non_negative=True),
            ),
            key=("uscc", "period", "source"),
            has_uscc=True,
        ),
        TableSpec(
            "inspections",
            (
                _c("inspection_id", "text"),
                _c("uscc", "text"),
                _c("inspected_on", "date"),
                _c("officer_id", "text", required=False),
                _c("outcome", "text", allowed=("violation", "no_violation", "unreachable")),
                _c("violation_type", "text", required=False, allowed=VIOLATION_TYPES),
            ),
            key=("inspection_id",),
            optional=True,
            has_uscc=True,
        ),
    ]
}
