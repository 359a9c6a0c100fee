"""A lead's reasons in the reader's language: the run's ``reason_codes`` carry each reason in Chinese and
English (``text_zh``, ``text_en``) beside its code and number; a run without them has only the Chinese
sentences of ``reasons``."""

from __future__ import annotations

from serving.schemas import split_reasons


def reasons_in(lang: str, reasons: str | None, reason_codes: list | None = None) -> list[str]:
    codes = [c for c in (reason_codes or []) if isinstance(c, dict)]
    if codes:
        key = "text_en" if lang == "en" else "text_zh"
        texts = [str(c.get(key) or c.get("text_zh") or "") for c in codes]
        texts = [x for x in texts if x.strip()]
        if texts:
            return texts
    return split_reasons(reasons)


def lead_reasons(lead, lang: str) -> list[str]:
    return reasons_in(lang, getattr(lead, "reasons", None), getattr(lead, "reason_codes", None))
