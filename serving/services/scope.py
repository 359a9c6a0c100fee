"""What part of the store a caller sees. A province's cities may share one store, and two cities may have
districts of the same name, so a caller's part is a city and, for an officer, a district of that city: an
officer is bound to their user's city (none: a city run's rows, whose city is NULL) and district; another
user bound to a city sees only that city; a user bound to none (a province role) sees every city, or the
one asked for. Asking for more than one may see is refused, not silently narrowed. An officer with no district
on record sees nothing and may do nothing (403), rather than the whole city."""

from __future__ import annotations

from dataclasses import dataclass

from serving.errors import Forbidden
from serving.identity import Principal

NO_DISTRICT = ("该执法人员账号未设置辖区，不能查看或处理线索、案件，请联系管理员设置辖区 "
               "(this officer account has no district on record: ask an admin to set one)")


@dataclass(frozen=True)
class Scope:
    """``city`` None with ``every_city``: all cities; else the rows of ``city`` (None: of a city run)."""

    city: str | None = None
    district: str | None = None
    every_city: bool = True

    def where(self, model) -> list:
        """Conditions on a table with ``city`` and ``district`` columns (leads, alerts, cases)."""
        conditions = []
        if not self.every_city:
            conditions.append(model.city.is_(None) if self.city is None else model.city == self.city)
        if self.district is not None:
            conditions.append(model.district == self.district)
        return conditions

    def holds(self, row) -> bool:
        """Whether one row (a lead, a case) lies within the scope."""
        return (self.every_city or row.city == self.city) and self.district in (None, row.district)


def caller_scope(principal: Principal, city: str | None = None, district: str | None = None) -> Scope:
    """The caller's scope, narrowed to the ``city`` and ``district`` asked for."""
    if principal.city is not None and city not in (None, principal.city):
        raise Forbidden(f"只能查看本市（{principal.city}）的数据 (this user sees only {principal.city})")
    if principal.is_officer:
        if not principal.district:  # fail closed: no district on record is no district, not every district
            raise Forbidden(NO_DISTRICT)
        if district is not None and district != principal.district:
            raise Forbidden(f"只能查看本辖区（{principal.district}）的数据 (officers see only their own district)")
        return Scope(principal.city, principal.district, every_city=False)
    city = principal.city or city
    return Scope(city, district, every_city=city is None)
