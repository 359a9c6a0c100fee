"""Alert texts in the reader's language. The run writes each alert's message in Chinese (``message``, what an
SMS says); English comes from templates here, keyed by the alert's kind and level and filled with the alert's
own numbers (value, threshold, period, permit, volume and tax at stake), so that an English page quotes the
same figures as the Chinese one."""

from __future__ import annotations

import math
from typing import Any

from serving.i18n import code_label, t

KNOWN_KINDS = ("quota", "quota_projection", "renewal", "expired_permit", "unpermitted", "tax_mismatch",
               "meter_data_missing", "source_prevention")


def _num(value: Any, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{float(value):,.{digits}f}"


def _fields(alert) -> dict[str, str]:
    get = (lambda k: alert.get(k)) if isinstance(alert, dict) else (lambda k: getattr(alert, k, None))
    basis = get("basis") or ("permit" if get("permit_id") else "plan")
    value, threshold = get("value"), get("threshold")
    if get("unit") == "share":  # a share in 0..1: the texts quote percentages
        value = None if value is None else 100 * float(value)
        threshold = None if threshold is None else 100 * float(threshold)
    return {
        "name": get("name") or get("uscc") or "", "uscc": get("uscc") or "", "permit": get("permit_id") or "",
        "project": get("project_id") or "", "period": get("period") or "", "value": _num(value),
        "value1": _num(value, 1), "threshold": _num(threshold),
        "volume": _num(get("volume_at_stake_m3")), "tax": _num(get("tax_at_stake_yuan")),
        "source": code_label("src", get("source"), "en").lower() if get("source") else "",
        "limit": "the permitted annual volume" + (f" of permit {get('permit_id')}" if get("permit_id") else "")
                 if basis == "permit" else "the annual water-use plan",
        "level": t(f"level.{get('level')}", "en").lower() if get("level") else "",
    }


TEMPLATES_EN = {
    "quota": "{name}: water use in {period} so far has reached {value}% of {limit} ({level} warning from "
             "{threshold}%). Plan the rest of the year; use above the limit is charged at progressive rates "
             "or prosecuted.",
    "quota_projection": "{name}: at this year's pace, use in {period} will reach about {value}% of {limit}. "
                        "Adjust the plan for the rest of the year now.",
    "renewal": "{name}: abstraction permit {permit} expires on {period} ({value} days left). To keep abstracting, "
               "apply for renewal at least 45 days before it expires.",
    "expired_permit": "{name} ({uscc}): abstraction permit {permit} has expired, yet {value} m³ was metered in "
                      "{period}. Suspected abstraction without a valid permit: inspect and order it to stop.",
    "unpermitted": "{name} ({uscc}) declared {value} m³ of {source} abstraction in {period} without a valid "
                   "permit for it. Suspected unpermitted abstraction: inspect on site.",
    # an unpermitted alert by its basis (tax filing is the kind's own text above)
    "unpermitted.meter": "Meters booked to permit number {permit}, which the register does not hold, measured {value} m³ "
                         "in {period}. Suspected unpermitted abstraction: inspect on site.",
    "unpermitted.before_permit": "{name} ({uscc}): meters on abstraction permit {permit} measured {value} m³ in "
                                 "{period} before the permit was granted. Abstraction before approval: open an "
                                 "enforcement file.",
    "unpermitted.quarantined_permit": "Meters booked to permit number {permit} measured {value} m³ in {period}. The "
                                      "permit's register row was quarantined at ingest, so the permit could not be "
                                      "checked: correct the register data and ingest again. This is no evidence of "
                                      "unpermitted abstraction.",
    "tax_mismatch": "{name} ({uscc}), {period}: the declared {source} abstraction differs from the metered volume "
                    "by {value}% (tolerance {threshold}%), {volume} m³ at stake, about ¥{tax} of tax. Check with "
                    "the tax bureau.",
    "meter_data_missing": "{name} ({uscc}), {period}: {value} m³ of {source} abstraction declared, but a meter of "
                          "that source sent no reading for the whole quarter although it read before and after it "
                          "(a data outage or readings not transmitted). The declaration cannot be checked against "
                          "the meter, so no tax mismatch is assumed: ask for the quarter's readings or verify the "
                          "quantity on site.",
    "source_prevention": "{name}: project {project} started or was approved {value} days ago. If it will use "
                         "water, apply for an abstraction permit and a water-use plan, and build the water-saving "
                         "facilities together with the project.",
}


def alert_text(alert, lang: str) -> str:
    """The alert's text in ``lang``: the run's Chinese message, or the English template with its numbers."""
    if alert is None:
        return ""
    get = (lambda k: alert.get(k)) if isinstance(alert, dict) else (lambda k: getattr(alert, k, None))
    if lang != "en":
        return get("message") or ""
    template = TEMPLATES_EN.get(f"{get('kind')}.{get('basis')}") or TEMPLATES_EN.get(get("kind") or "")
    if template is None:
        f = _fields(alert)
        return (f"{t('kind.' + str(get('kind')), 'en')} ({f['level']}): {f['value1']} {get('unit') or ''} "
                f"against {f['threshold']}, {f['period']}").strip()
    return template.format(**_fields(alert))
