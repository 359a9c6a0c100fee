"""Every console list as a file: CSV (UTF-8 with a byte-order mark, so that Excel shows the Chinese) or XLSX
(openpyxl), with the same filters as the page and column headers in the page's language."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timezone
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi.responses import Response

from serving.settings import DISPLAY_TIMEZONE

FORMATS = ("csv", "xlsx")
MAX_ROWS = 200_000
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def export_format(value: str | None) -> str | None:
    """``csv`` or ``xlsx`` when the query asks for a file, else None (the page)."""
    value = (value or "").strip().lower()
    return value if value in FORMATS else None


def _cell(value, zone: ZoneInfo):
    if isinstance(value, datetime):  # stored as UTC (naive = UTC), shown on the console's clock
        at = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return at.astimezone(zone).replace(tzinfo=None).isoformat(sep=" ", timespec="seconds")
    if isinstance(value, (list, tuple, set)):
        return "；".join(str(v) for v in value)
    if isinstance(value, dict):
        return "；".join(f"{k}={v}" for k, v in value.items())
    return value


def _csv(headers: Sequence[str], rows: Iterable[Sequence], zone: ZoneInfo) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(headers)
    for row in rows:
        cells = (_cell(c, zone) for c in row)
        writer.writerow(["" if v is None else (v.isoformat() if isinstance(v, date) else v) for v in cells])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def _xlsx(headers: Sequence[str], rows: Iterable[Sequence], title: str, zone: ZoneInfo) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title=title[:31] or "Sheet1")
    ws.freeze_panes = "A2"
    from openpyxl.cell import WriteOnlyCell

    head = []
    for h in headers:
        cell = WriteOnlyCell(ws, value=h)
        cell.font = Font(bold=True)
        head.append(cell)
    ws.append(head)
    for row in rows:
        ws.append([_cell(v, zone) for v in row])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def export_response(fmt: str, filename: str, columns: Sequence[tuple[str, str]], rows: Iterable[dict],
                    title: str = "", zone: str = DISPLAY_TIMEZONE) -> Response:
    """``rows`` (dicts) as a file; ``columns`` are (key, header) in order; times on ``zone``'s clock."""
    keys = [k for k, _ in columns]
    headers = [h for _, h in columns]
    values = ([row.get(k) for k in keys] for i, row in enumerate(rows) if i < MAX_ROWS)
    if fmt == "xlsx":
        body, media = _xlsx(headers, values, title or filename, ZoneInfo(zone)), XLSX_TYPE
    else:
        body, media = _csv(headers, values, ZoneInfo(zone)), "text/csv; charset=utf-8"
    name = f"{filename}.{fmt}"
    disposition = f"attachment; filename=\"{name.encode('ascii', 'replace').decode()}\"; filename*=UTF-8''{quote(name)}"
    return Response(body, media_type=media, headers={"Content-Disposition": disposition, "Cache-Control": "no-store"})
