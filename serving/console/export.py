"""Every console list as a file: CSV (UTF-8 with a byte-order mark, so that Excel shows the Chinese) or XLSX
(openpyxl), with the same filters as the page and column headers in the page's language.

Cells hold what others typed (an entity's name from department data, a gateway's error), so no text may become
a formula in the spreadsheet that opens the file (OWASP, "CSV injection"): in CSV a text starting with = + - @,
a tab or a carriage return gets a leading single quote; in XLSX every text is written as a string cell, never
a formula, such a text marked with Excel's quote prefix (shown as typed, kept as text). Numbers stay numbers."""

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
FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")  # what makes a spreadsheet read a cell as a formula
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


def _formula_like(value) -> bool:
    return isinstance(value, str) and value.startswith(FORMULA_LEADS)


def _csv_text(value):
    """A CSV value: formula-like text behind a single quote, so that a spreadsheet shows it and runs nothing."""
    return "'" + value if _formula_like(value) else value


def _csv(headers: Sequence[str], rows: Iterable[Sequence], zone: ZoneInfo) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(headers)
    for row in rows:
        cells = (_cell(c, zone) for c in row)
        writer.writerow(["" if v is None else (v.isoformat() if isinstance(v, date) else _csv_text(v)) for v in cells])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def _xlsx_text(ws, value: str):
    """A string cell (inline string), never a formula nor an error code whatever the text starts with; control
    characters XML cannot hold are replaced, formula-like text carries the quote prefix."""
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    cell = WriteOnlyCell(ws, value=ILLEGAL_CHARACTERS_RE.sub("\ufffd", value))
    cell.data_type = "s"
    if _formula_like(value):
        cell.quotePrefix = True
    return cell


def _xlsx(headers: Sequence[str], rows: Iterable[Sequence], title: str, zone: ZoneInfo) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title=title[:31] or "Sheet1")
    ws.freeze_panes = "A2"
    head = []
    for h in headers:
        cell = _xlsx_text(ws, h)
        cell.font = Font(bold=True)
        head.append(cell)
    ws.append(head)
    for row in rows:
        cells = (_cell(v, zone) for v in row)
        ws.append([_xlsx_text(ws, v) if isinstance(v, str) else v for v in cells])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def fetch_limit() -> int:
    """How many rows an export's query fetches: one more than it writes, so that it knows when it cut the list."""
    return MAX_ROWS + 1


def export_response(fmt: str, filename: str, columns: Sequence[tuple[str, str]], rows: Iterable[dict],
                    title: str = "", zone: str = DISPLAY_TIMEZONE) -> Response:
    """``rows`` (dicts) as a file; ``columns`` are (key, header) in order; times on ``zone``'s clock. At most
    ``MAX_ROWS`` rows: a longer list is cut, and the answer says so (``X-Export-Truncated``: the rows written).
    Callers fetch no more than ``fetch_limit()`` rows."""
    keys = [k for k, _ in columns]
    headers = [h for _, h in columns]
    cut: list[bool] = []

    def values():
        for i, row in enumerate(rows):
            if i >= MAX_ROWS:
                cut.append(True)
                return
            yield [row.get(k) for k in keys]

    if fmt == "xlsx":
        body, media = _xlsx(headers, values(), title or filename, ZoneInfo(zone)), XLSX_TYPE
    else:
        body, media = _csv(headers, values(), ZoneInfo(zone)), "text/csv; charset=utf-8"
    name = f"{filename}.{fmt}"
    disposition = f"attachment; filename=\"{name.encode('ascii', 'replace').decode()}\"; filename*=UTF-8''{quote(name)}"
    answer = {"Content-Disposition": disposition, "Cache-Control": "no-store"}
    if cut:
        answer["X-Export-Truncated"] = str(MAX_ROWS)
    return Response(body, media_type=media, headers=answer)
