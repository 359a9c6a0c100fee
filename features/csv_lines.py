"""The record structure of a department's CSV file, checked before pandas reads it, so that one broken line
(a field too many or too few, a stray quote) is quarantined as one row instead of aborting the table.

The rules (README, "Bad input"):

- The header must name every column once; a duplicated name refuses the table (``IngestError``).
- A record is what RFC 4180 makes of the lines: a quoted value may hold commas, doubled quotes and line
  breaks (the contract's text is "as the departments write it", and spreadsheets export cell line breaks
  so). Blank or whitespace-only lines are no rows, as pandas skips them.
- A record with another number of fields than the header, quoted properly, is one malformed row.
- A record whose quoting is broken (a quote that never closes, text after a closing quote, a quoted value
  that swallows whole record-like lines) is quarantined as its first line alone, and reading goes on at the
  next line: a stray quote costs one row, never the rest of the file.
- Data rows are numbered from 1 in record order, malformed ones included, as every quarantine row is.
- The contract's files are UTF-8. A record holding bytes that are not UTF-8 (a line a clerk pasted from a GBK
  file, or a whole file saved in GBK) is quarantined as one row naming its line and column, its value shown
  as GB18030 reads it; the rest of the file is read. A header that is not UTF-8 refuses the file.

A file without a quote character or a lone carriage return, whose every line has the header's number of
commas and is UTF-8, cannot hold a malformed record: a vectorised byte scan proves that and pandas reads it unchanged
(the fast path). Any other file goes through Python's ``csv`` module record by record; its good records
reach pandas as written, each malformed one as a placeholder row of empty cells marked with its problem.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from pathlib import Path

import numpy as np

QUOTE, COMMA, LF, CR = 34, 44, 10, 13
SCAN_BLOCK = 1 << 24  # bytes scanned at a time: the check streams, so a file of any size fits
VALUE_CHARS = 500  # how much of a malformed record's text its quarantine row keeps
ENCODING = dict(encoding="utf-8-sig", errors="surrogateescape")  # bytes that are not UTF-8 kept as U+DC80-U+DCFF
_UNDECODABLE = re.compile("[\udc80-\udcff]")


class HeaderError(ValueError):
    """A header that cannot name the table's columns (read as an ``IngestError`` by the caller)."""


def read_header(path: Path) -> tuple[list[str], str]:
    """The header's column names (stripped, as ingest compares them) and its text as written; refuses a
    header that names a column twice, since either copy could be the one the department meant."""
    with open(path, newline="", **ENCODING) as fh:
        taken: list[str] = []
        lines = (taken.append(line) or line for line in fh)
        try:
            names = [n.strip() for n in header_record(csv.reader(lines, strict=True))]
        except StopIteration:
            raise HeaderError("the file is empty (no header row)") from None
        except csv.Error as exc:
            raise HeaderError(f"the header row cannot be read: {exc}") from None
    if _UNDECODABLE.search("".join(taken)):
        where = next(i for i, n in enumerate(names) if _UNDECODABLE.search(n))
        raise HeaderError(f"the header row (line {len(taken)}) is not UTF-8 text: column {where + 1} reads "
                          f"'{readable(names[where])}' as GB18030; the contract's files are UTF-8, save it as UTF-8")
    check_unique(names)
    return names, "".join(taken)


def header_record(reader) -> list[str]:
    """The first record of a ``csv.reader`` that is not a blank or whitespace-only line: blank lines are no rows,
    before the header too (pandas skips them there as well); StopIteration when there is none."""
    for fields in reader:
        if len(fields) > 1 or (fields and fields[0].strip()):
            return fields
    raise StopIteration


def check_unique(names) -> None:
    """Every non-empty column name once (pandas names empty ones 'Unnamed: i' itself)."""
    twice = [name for name, n in Counter(str(c).strip() for c in names).items() if n > 1 and name]
    if twice:
        raise HeaderError(f"the header names column(s) {', '.join(twice)} more than once; each column must appear once")


def is_plain(path: Path, width: int) -> bool:
    """True when no line of the file can be misread: no quote, no lone CR, ``width - 1`` commas a line."""
    with open(path, "rb") as fh:
        carry = b""
        while True:
            block = fh.read(SCAN_BLOCK)
            data = carry + block
            if not block:
                return not data or (_utf8(data) and _plain_lines(np.frombuffer(data + b"\n", np.uint8), width))
            end = data.rfind(b"\n")
            if end >= 0 and not (_utf8(data[: end + 1]) and _plain_lines(np.frombuffer(data, np.uint8)[: end + 1], width)):
                return False
            carry = data[end + 1 :]


def _utf8(data: bytes) -> bool:
    """True when ``data`` (whole lines: a line end never falls inside a UTF-8 character) is UTF-8."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def readable(text: str) -> str:
    """Text read with ``surrogateescape`` as a person can read it: its bytes as GB18030 (the Chinese encoding
    that is not UTF-8 a department's file is most likely in) when they are that, else with U+FFFD for each
    byte that is not UTF-8."""
    if not _UNDECODABLE.search(text):
        return text
    raw = text.encode("utf-8", "surrogateescape")
    try:
        return raw.decode("gb18030")
    except UnicodeDecodeError:
        return raw.decode("utf-8", "replace")


def _plain_lines(arr: np.ndarray, width: int) -> bool:
    """``is_plain`` on whole lines (``arr`` ends with a newline)."""
    if (arr == QUOTE).any():
        return False
    cr = np.flatnonzero(arr == CR)
    if len(cr) and not (arr[cr + 1] == LF).all():
        return False
    nl = np.flatnonzero(arr == LF)
    commas = np.diff(np.searchsorted(np.flatnonzero(arr == COMMA), nl), prepend=0)
    length = np.diff(nl, prepend=-1) - 1
    blank = (length == 0) | ((length == 1) & (arr[nl - 1] == CR))
    return bool(((commas == width - 1) | blank).all())


class _Lines:
    """The file's lines for ``csv.reader``, keeping the lines of the record being read so that a record with
    broken quoting can give all but its first line back to be read again."""

    def __init__(self, fh, first_line: int):
        self._fh, self._back, self.taken, self.next_line = fh, [], [], first_line

    def __iter__(self):
        return self

    def __next__(self) -> str:
        line = self._back.pop() if self._back else next(self._fh)
        self.taken.append(line)
        self.next_line += 1
        return line

    def give_back(self, lines: list[str]) -> None:
        self._back.extend(reversed(lines))
        self.next_line -= len(lines)


def records(path: Path, header: list[str]):
    """The data records after the header, in order: ``(text, None)`` for a good record (its lines as
    written) and ``(placeholder, (column, value, reason))`` for a malformed one."""
    width = len(header)
    placeholder = '""' + "," * (width - 1) + "\n"  # one row of empty cells (a quoted one, so never blank)
    with open(path, newline="", **ENCODING) as fh:
        lines = _Lines(fh, first_line=1)
        reader = csv.reader(lines, strict=True)
        header_record(reader)  # the header, after any blank lines (read_header checked it)
        while True:
            lines.taken, start = [], lines.next_line
            try:
                fields, error = next(reader), None
            except StopIteration:
                return
            except csv.Error as exc:
                fields, error = None, str(exc)
            taken = lines.taken
            if fields is not None and len(fields) == width and len(taken) == 1 and not _UNDECODABLE.search(taken[0]):
                yield taken[0], None  # the common case, first
                continue
            text = "".join(taken)
            if fields is not None and len(fields) == width and _UNDECODABLE.search(text):
                yield _not_utf8(text, fields, header, start)
                continue
            if not text.strip(" \t\r\n"):
                continue  # a blank line is no row (pandas skips it too)
            swallows = len(taken) > 2 and _swallows_records(taken, width)
            if fields is not None and len(fields) == width and not swallows:
                yield text, None
            elif len(taken) > 1 and (error is not None or swallows):
                lines.give_back(taken[1:])  # broken quoting: the first line alone is the bad row
                yield placeholder, _line_problem(taken[0], header, start, error)
            else:
                yield placeholder, _count_problem(text, len(fields) if fields is not None else None, header, start,
                                                  start + len(taken) - 1, error)


def _not_utf8(text: str, fields: list[str], header: list[str], number: int) -> tuple[str, tuple[str, str, str]]:
    """A record of the header's width holding bytes that are not UTF-8: quarantined, its cells kept (each such
    byte as U+FFFD) so that the quarantine can name its key."""
    column = header[next(i for i, f in enumerate(fields) if _UNDECODABLE.search(f))]
    reason = (f"not UTF-8 text (line {number}); the contract's files are UTF-8: save the file as UTF-8 "
              "(the value is shown as GB18030 reads it)")
    return _UNDECODABLE.sub("\ufffd", text), (column, readable(text.rstrip("\r\n"))[:VALUE_CHARS], reason)


def _swallows_records(taken: list[str], width: int) -> bool:
    """A quoted value spanning lines that holds a whole line with a record's commas is a stray quote
    swallowing records, not a line break a clerk typed into a name."""
    return any(line.count(",") >= width - 1 for line in taken[1:-1])


def _line_problem(line: str, header: list[str], number: int, error: str | None) -> tuple[str, str, str]:
    """Column, value and reason for a first line whose quoting is broken."""
    text = readable(line.rstrip("\r\n"))
    found = quote_problem(text)
    if found is None:
        return "(line)", text[:VALUE_CHARS], f"cannot be read as CSV: {error} (line {number})"
    index, what = found
    column = header[index] if index < len(header) else "(extra fields)"
    return column, text[:VALUE_CHARS], f"{what} (line {number}; reading goes on at the next line)"


def _count_problem(text: str, n_fields: int | None, header: list[str], first: int, last: int,
                   error: str | None) -> tuple[str, str, str]:
    """Column, value and reason for a record with the wrong number of fields (or unreadable on one line)."""
    value = readable(text.rstrip("\r\n"))[:VALUE_CHARS]
    if n_fields is None:
        return _line_problem(text, header, first, error)
    lines = f"line {first}" if first == last else f"lines {first}-{last}"
    width = len(header)
    column = ",".join(header[n_fields:]) if n_fields < width else "(extra fields)"
    plural = "field" if n_fields == 1 else "fields"
    return column, value, f"{n_fields} {plural} where the header has {width} ({lines})"


def quote_problem(line: str) -> tuple[int, str] | None:
    """The 0-based field index and kind of the first quoting error on one line, or None if it has none."""
    state, index, i = "start", 0, 0
    while i < len(line):
        c = line[i]
        if state == "quoted":
            if c == '"':
                if line[i + 1 : i + 2] == '"':
                    i += 1
                else:
                    state = "closed"
        elif c == ",":
            index, state = index + 1, "start"
        elif state == "start":
            state = "quoted" if c == '"' else "plain"
        elif state == "closed":
            return index, "text after a closing quote"
        i += 1
    return (index, "unbalanced quote") if state == "quoted" else None


def chunks_of_records(path: Path, header: list[str], header_text: str, chunk_rows: int | None):
    """The records of a file that is not plain, ``chunk_rows`` at a time (all at once for None), each chunk
    as CSV bytes pandas can read (header first) and the marks of its malformed rows by position."""
    parts, marks, sent = [header_text], [], False
    for text, mark in records(path, header):
        parts.append(text)  # only the file's last line can lack its line end, and it comes last
        marks.append(mark)
        if chunk_rows is not None and len(marks) == chunk_rows:
            data, done, parts, marks, sent = "".join(parts).encode("utf-8"), marks, [header_text], [], True
            yield io.BytesIO(data), done  # the chunk's lines are let go before pandas reads them
    if marks or not sent:
        data, parts = "".join(parts).encode("utf-8"), None
        yield io.BytesIO(data), marks
