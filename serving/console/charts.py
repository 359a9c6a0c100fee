"""Charts of the console as inline SVG (no scripts, no CDN): monthly volumes with the permit quota and
the month a level shift began, stacked bars, verdicts with the hit rate.

Every function returns markup safe to put in a template; every label is escaped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from markupsafe import Markup, escape

from serving.store import Permit

# colours: volumes, alert levels, lead statuses (also used by the CSS legend swatches)
SERIES_COLOURS = {"supply_m3": "#2b6cb0", "abstraction_m3": "#2f855a", "discharge_m3": "#c05621"}
QUOTA_COLOUR, SINCE_COLOUR = "#c53030", "#6b46c1"
LEVEL_COLOURS = {"red": "#e53e3e", "orange": "#ed8936", "yellow": "#ecc94b", "warning": "#805ad5",
                 "notice": "#319795", "reminder_90": "#90cdf4", "reminder_60": "#2c5282"}
LEVEL_ORDER = ("red", "orange", "yellow", "warning", "reminder_60", "reminder_90", "notice")
STATUS_COLOURS = {"new": "#a0aec0", "assigned": "#3182ce", "in_progress": "#dd6b20", "closed": "#38a169"}
AGE_COLOURS = {"d7": "#9ae6b4", "d30": "#f6e05e", "d90": "#ed8936", "older": "#c53030"}  # backlog age buckets


def level_rank(level: str) -> int:
    """Most severe first; unknown levels last."""
    return LEVEL_ORDER.index(level) if level in LEVEL_ORDER else len(LEVEL_ORDER)


def fmt_num(value: Any, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:,.{digits}f}"


def _nice_step(span: float, ticks: int = 4) -> float:
    if span <= 0:
        return 1.0
    raw = span / ticks
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


# -- inline SVG charts -----------------------------------------------------------------------------


def _polyline(points: list[tuple[float, float] | None]) -> str:
    """SVG path data; a None breaks the line (a month with no data is a gap, not a zero)."""
    out, pen = [], False
    for p in points:
        if p is None:
            pen = False
            continue
        out.append(f"{'L' if pen else 'M'}{p[0]:.1f},{p[1]:.1f}")
        pen = True
    return " ".join(out)


@dataclass(frozen=True)
class _Frame:
    """Plot area of a monthly chart: month i at x(i), value v at y(v)."""

    n: int
    ymax: float
    step: float
    width: int
    height: int
    left: int = 70
    right: int = 16
    top: int = 24
    bottom: int = 44

    @property
    def pw(self) -> float:
        return self.width - self.left - self.right

    @property
    def ph(self) -> float:
        return self.height - self.top - self.bottom

    @property
    def half(self) -> float:
        """Half a month's width."""
        return self.pw / self.n / 2 if self.n else 0

    def x(self, i: float) -> float:
        return self.left + (self.pw * (i + 0.5) / self.n if self.n else 0)

    def y(self, v: float) -> float:
        return self.top + self.ph - self.ph * v / self.ymax


def _monthly_frame(n: int, values: list[float], width: int, height: int) -> _Frame:
    vmax = max(values) if values else 1.0
    step = _nice_step(vmax * 1.05 if vmax > 0 else 1.0)
    ymax = step * max(1, math.ceil(vmax * 1.05 / step)) if vmax > 0 else step * 4
    return _Frame(n, ymax, step, width, height)


def _monthly_axes(f: _Frame, months: list[str], unit: str, max_labels: int = 12) -> list[str]:
    parts, tick = [], 0.0
    while tick <= f.ymax + 1e-9:
        yy = f.y(tick)
        parts.append(f'<line class="grid" x1="{f.left}" x2="{f.width - f.right}" y1="{yy:.1f}" y2="{yy:.1f}"/>')
        parts.append(f'<text class="axis" x="{f.left - 6}" y="{yy + 4:.1f}" text-anchor="end">{fmt_num(tick)}</text>')
        tick += f.step
    parts.append(f'<text class="axis unit" x="{f.left - 6}" y="{f.top - 10}" text-anchor="end">{escape(unit)}</text>')
    every = max(1, math.ceil(f.n / max_labels))
    for i, m in enumerate(months):
        if (f.n - 1 - i) % every == 0:  # anchored at the latest month, which is always labelled
            parts.append(f'<text class="axis" x="{f.x(i):.1f}" y="{f.height - f.bottom + 18}" '
                         f'text-anchor="middle">{escape(m)}</text>')
    parts.append(f'<line class="baseline" x1="{f.left}" x2="{f.width - f.right}" y1="{f.y(0):.1f}" y2="{f.y(0):.1f}"/>')
    return parts


def _since_marker(f: _Frame, months: list[str], since: str, label: str) -> str:
    xs = f.x(months.index(since)) - f.half
    return (f'<g class="since"><line x1="{xs:.1f}" x2="{xs:.1f}" y1="{f.top}" y2="{f.top + f.ph}" '
            f'stroke="{SINCE_COLOUR}" stroke-dasharray="4 3" stroke-width="2"/><text x="{xs + 4:.1f}" '
            f'y="{f.top + 12}" fill="{SINCE_COLOUR}">{escape(label)} {escape(since)}</text></g>')


def _quota_line(f: _Frame, quota: list[float | None], label: str) -> str:
    pts: list[tuple[float, float] | None] = []
    for i, v in enumerate(quota):
        pts += [None] if v is None else [(f.x(i) - f.half, f.y(v)), (f.x(i) + f.half, f.y(v))]
    return (f'<path class="series quota" d="{_polyline(pts)}" fill="none" stroke="{QUOTA_COLOUR}" '
            f'stroke-width="2" stroke-dasharray="7 4"><title>{escape(label)}</title></path>')


def _series_line(f: _Frame, months: list[str], key: str, label: str, vals: list[float | None], colour: str) -> str:
    pts = [None if v is None else (f.x(i), f.y(v)) for i, v in enumerate(vals)]
    if not any(p is not None for p in pts):
        return ""
    dots = "".join(f'<circle cx="{p[0]:.1f}" cy="{p[1]:.1f}" r="2.6"><title>{escape(label)} {escape(months[i])}: '
                   f'{fmt_num(vals[i])}</title></circle>' for i, p in enumerate(pts) if p is not None)
    return (f'<path class="series {key}" d="{_polyline(pts)}" fill="none" stroke="{colour}" stroke-width="2.2" '
            f'stroke-linejoin="round"/><g class="dots {key}" fill="{colour}">{dots}</g>')


def monthly_chart_svg(
    months: list[str], lines: list[tuple[str, str, list[float | None], str]], quota: list[float | None] | None,
    since: str | None, labels: dict[str, str], width: int = 760, height: int = 300, compact: bool = False,
) -> Markup:
    """Monthly volumes as lines, the permit quota as a dashed step line and the shift month as a marker.

    ``lines``: (css key, label, values, colour). ``labels``: 'unit', 'quota', 'since', 'title' texts.
    ``compact``: the phone's version (``monthly_chart_pair``): a narrower drawing with four month labels, so that
    its text keeps a legible size where a 760-unit drawing would be shrunk to half.
    """
    values = [v for _, _, vals, _ in lines for v in vals if v is not None] + [v for v in (quota or []) if v is not None]
    f = _monthly_frame(len(months), values, width, height)
    kind = 'class="chart compact" data-chart="monthly-compact"' if compact else 'class="chart" data-chart="monthly"'
    parts = [f'<svg {kind} viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="{escape(labels.get("title", ""))}" preserveAspectRatio="xMidYMid meet">',
             *_monthly_axes(f, months, labels.get("unit", ""), 4 if compact else 12)]
    if since and since in months:
        parts.append(_since_marker(f, months, since, labels.get("since", "")))
    if quota and any(v is not None for v in quota):
        parts.append(_quota_line(f, quota, labels.get("quota", "")))
    parts += [_series_line(f, months, *line) for line in lines]
    parts.append("</svg>")
    return Markup("".join(parts))


def monthly_chart_pair(months: list[str], lines: list[tuple[str, str, list[float | None], str]],
                       quota: list[float | None] | None, since: str | None, labels: dict[str, str]) -> Markup:
    """The monthly chart twice: the full drawing, and the compact one a phone shows instead (CSS picks one)."""
    return Markup(monthly_chart_svg(months, lines, quota, since, labels)
                  + monthly_chart_svg(months, lines, quota, since, labels, width=360, height=260, compact=True))


def stacked_bars_svg(rows: list[tuple[str, list[tuple[str, float, str]]]], chart: str, width: int = 560) -> Markup:
    """Horizontal stacked bars: rows of (label, [(segment label, value, colour[, link])]), the total at the end;
    a segment with a link is a link to the list behind it."""
    left, right, bar, gap = 120, 56, 20, 8
    height = max(1, len(rows)) * (bar + gap) + gap
    total_max = max((sum(seg[1] for seg in segs) for _, segs in rows), default=0) or 1
    pw = width - left - right
    parts = [f'<svg class="chart bars" data-chart="{escape(chart)}" viewBox="0 0 {width} {height}" role="img" '
             f'preserveAspectRatio="xMidYMid meet">']
    for r, (label, segs) in enumerate(rows):
        yy = gap + r * (bar + gap)
        parts.append(f'<text class="axis" x="{left - 8}" y="{yy + bar * 0.72:.1f}" text-anchor="end">{escape(label)}</text>')
        xx = float(left)
        for seg_label, value, colour, *link in segs:
            if value <= 0:
                continue
            w = pw * value / total_max
            rect = (f'<rect x="{xx:.1f}" y="{yy}" width="{max(w, 1):.1f}" height="{bar}" fill="{colour}">'
                    f'<title>{escape(label)} · {escape(seg_label)}: {fmt_num(value)}</title></rect>')
            # a segment with a link drills down to the list it counts
            parts.append(f'<a href="{escape(link[0])}" class="drill">{rect}</a>' if link and link[0] else rect)
            xx += w
        total = sum(seg[1] for seg in segs)
        parts.append(f'<text class="total" x="{xx + 6:.1f}" y="{yy + bar * 0.72:.1f}">{fmt_num(total)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def hit_rate_svg(months: list[str], counts: list[int], rates: list[float | None], labels: dict[str, str],
                 width: int = 560, height: int = 220) -> Markup:
    """Verdicts per month as bars (left axis) and the hit rate as a line (right axis, 0-100 %)."""
    left, right, top, bottom = 44, 44, 16, 36
    n = max(1, len(months))
    pw, ph = width - left - right, height - top - bottom
    cmax = max(counts, default=0) or 1
    step = max(1, math.ceil(_nice_step(cmax, 2)))  # counts are whole verdicts
    cmax = step * math.ceil(cmax / step)
    slot = pw / n
    bar_w = min(slot * 0.7, 48.0)
    parts = [f'<svg class="chart" data-chart="hit-rate" viewBox="0 0 {width} {height}" role="img" '
             f'preserveAspectRatio="xMidYMid meet">']
    for frac in (0, 0.5, 1):
        yy = top + ph - ph * frac
        parts.append(f'<line class="grid" x1="{left}" x2="{width - right}" y1="{yy:.1f}" y2="{yy:.1f}"/>')
        parts.append(f'<text class="axis" x="{width - right + 6}" y="{yy + 4:.1f}">{frac:.0%}</text>')
        if float(cmax * frac).is_integer():
            parts.append(f'<text class="axis" x="{left - 6}" y="{yy + 4:.1f}" text-anchor="end">{fmt_num(cmax * frac)}</text>')
    every = max(1, math.ceil(n / 8))
    pts: list[tuple[float, float] | None] = []
    for i, (m, c, r) in enumerate(zip(months, counts, rates)):
        bh = ph * c / cmax
        cx = left + slot * i + slot / 2
        parts.append(f'<rect class="bar" x="{cx - bar_w / 2:.1f}" y="{top + ph - bh:.1f}" '
                     f'width="{bar_w:.1f}" height="{bh:.1f}" fill="#90cdf4"><title>{escape(m)} · '
                     f'{escape(labels.get("verdicts", ""))}: {c}</title></rect>')
        pts.append(None if r is None else (cx, top + ph - ph * r))
        if (n - 1 - i) % every == 0:
            parts.append(f'<text class="axis" x="{cx:.1f}" y="{height - bottom + 16}" text-anchor="middle">{escape(m)}</text>')
    if any(p is not None for p in pts):
        parts.append(f'<path class="series hit-rate" d="{_polyline(pts)}" fill="none" stroke="#c53030" stroke-width="2.2"/>')
        parts.append("".join(
            f'<circle cx="{p[0]:.1f}" cy="{p[1]:.1f}" r="3" fill="#c53030"><title>{escape(months[i])} · '
            f'{escape(labels.get("hit_rate", ""))}: {rates[i]:.0%}</title></circle>'
            for i, p in enumerate(pts) if p is not None))
    parts.append("</svg>")
    return Markup("".join(parts))


def monthly_quota(months: list[str], permits: list[Permit]) -> list[float | None]:
    """Annual quota / 12 of the permits valid in each month, pro rata of the days each was valid
    (a renewal that starts mid-month does not count twice); None where no permit was valid."""
    if not months or not permits:
        return [None] * len(months)
    starts = np.array([np.datetime64(f"{m}-01", "D") for m in months])
    ends = (starts.astype("datetime64[M]") + np.timedelta64(1, "M")).astype("datetime64[D]")  # exclusive
    days = (ends - starts).astype(float)
    total = np.zeros(len(months))
    covered = np.zeros(len(months), dtype=bool)
    for p in permits:  # an entity holds a handful of permits
        if p.annual_quota_m3 is None or (p.status or "").lower() in ("revoked", "cancelled"):
            continue
        lo = np.datetime64(p.valid_from, "D") if p.valid_from else np.datetime64("1900-01-01")
        hi = (np.datetime64(p.valid_to, "D") if p.valid_to else np.datetime64("2999-12-30")) + np.timedelta64(1, "D")
        overlap = (np.minimum(ends, hi) - np.maximum(starts, lo)).astype(float).clip(0)
        total += p.annual_quota_m3 / 12.0 * overlap / days
        covered |= overlap > 0
    return [round(float(v), 1) if c else None for v, c in zip(total, covered)]


def ytd_share(series: dict, year: str, share_pct: float | None, permit_based: bool) -> list[float | None]:
    """Year-to-date use in ``year`` as a share (%) of the annual limit, month by month (12 values; None after
    the last month with data). The curve's shape is the entity's monthly series (metered abstraction for a
    permit, supply plus abstraction for a plan); its level is the alert's measured share, reached at the
    last month, so the chart and the alert's number always agree."""
    months = list(series.get("month") or [])
    keys = ("abstraction_m3",) if permit_based else ("supply_m3", "abstraction_m3")
    monthly = [0.0] * 12
    last = -1
    for i, m in enumerate(months):
        if not str(m).startswith(f"{year}-"):
            continue
        k = int(str(m)[5:7]) - 1
        for key in keys:
            v = (series.get(key) or [None] * len(months))[i]
            monthly[k] += float(v) if v is not None else 0.0
        last = max(last, k)
    if last < 0 or share_pct is None:
        return [None] * 12
    cum = np.cumsum(monthly[: last + 1])
    scale = share_pct / cum[-1] if cum[-1] > 0 else 0.0
    return [round(float(c * scale), 1) for c in cum] + [None] * (11 - last)


def ytd_curve_svg(shares: list[float | None], thresholds: dict[str, float], labels: dict[str, str],
                  width: int = 300, height: int = 120) -> Markup:
    """A year-to-date curve (% of the annual limit, Jan-Dec) with the yellow/orange/red thresholds as lines and
    the run rate to December dashed. ``thresholds``: level -> % (e.g. yellow 80)."""
    left, right, top, bottom = 34, 38, 8, 18
    known = [(i, v) for i, v in enumerate(shares) if v is not None]
    last_i, last_v = known[-1] if known else (0, 0.0)
    projected = last_v * 12 / (last_i + 1) if known else 0.0
    # the axis stops at 2.5x the red line: a share far above it is drawn at the top edge, its number in the title
    ymax = min(max([120.0, last_v * 1.1, projected * 1.05, *[v * 1.1 for v in thresholds.values()]]),
               2.5 * max(thresholds.values(), default=100.0))
    ymax = 20 * math.ceil(ymax / 20)
    pw, ph = width - left - right, height - top - bottom
    x = lambda i: left + pw * i / 11  # noqa: E731
    y = lambda v: top + ph - ph * min(v, ymax) / ymax  # noqa: E731
    parts = [f'<svg class="chart ytd" data-chart="ytd" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="{escape(labels.get("title", ""))}" preserveAspectRatio="xMidYMid meet">']
    labelled_at: list[float] = []
    for level, pct in sorted(thresholds.items(), key=lambda kv: -kv[1]):
        yy = y(pct)
        colour = LEVEL_COLOURS.get(level, "#a0aec0")
        parts.append(f'<line class="threshold {escape(level)}" x1="{left}" x2="{width - right}" y1="{yy:.1f}" '
                     f'y2="{yy:.1f}" stroke="{colour}" stroke-width="1.5"><title>{pct:.0f}%</title></line>')
        if all(abs(yy - other) >= 11 for other in labelled_at):  # labels that would overlap are left out
            labelled_at.append(yy)
            parts.append(f'<text class="axis" x="{width - right + 4}" y="{yy + 4:.1f}" fill="{colour}">{pct:.0f}%</text>')
    parts.append(f'<text class="axis" x="{left - 4}" y="{top + 8}" text-anchor="end">{ymax:.0f}%</text>')
    parts.append(f'<line class="baseline" x1="{left}" x2="{width - right}" y1="{y(0):.1f}" y2="{y(0):.1f}"/>')
    for i, label in ((0, labels.get("jan", "1")), (11, labels.get("dec", "12"))):
        parts.append(f'<text class="axis" x="{x(i):.1f}" y="{height - 4}" text-anchor="middle">{escape(label)}</text>')
    parts.append(f'<text class="axis" x="{left - 4}" y="{y(0) + 4:.1f}" text-anchor="end">0</text>')
    if known:
        parts.append(f'<path class="series ytd" d="{_polyline([(x(i), y(v)) for i, v in known])}" fill="none" '
                     f'stroke="#2b6cb0" stroke-width="2.2"/>')
        if last_i < 11:
            parts.append(f'<path class="series projection" d="M{x(last_i):.1f},{y(last_v):.1f} L{x(11):.1f},'
                         f'{y(projected):.1f}" fill="none" stroke="#2b6cb0" stroke-width="1.5" stroke-dasharray="4 3">'
                         f'<title>{escape(labels.get("projection", ""))}: {projected:.0f}%</title></path>')
        parts.append(f'<circle cx="{x(last_i):.1f}" cy="{y(last_v):.1f}" r="3.5" fill="#2b6cb0"><title>'
                     f'{escape(labels.get("now", ""))}: {last_v:.0f}%</title></circle>')
    parts.append("</svg>")
    return Markup("".join(parts))
