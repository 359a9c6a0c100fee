"""Where a visit takes an officer: the industrial park an address lies in, else its street or road, so that a day
sheet groups the leads an officer can visit on one route."""

from __future__ import annotations

import re

_PREFIX = re.compile(r"^(?:[\u4e00-\u9fff]{2,3}省)?(?:[\u4e00-\u9fff]{2,4}市)?")
_PARK = re.compile(r"([\u4e00-\u9fff]{0,12}?(?:经济技术开发区|高新技术产业开发区|经济开发区|高新区|开发区|工业园区|"
                   r"产业园区|工业园|产业园|物流园|园区))")
_STREET = re.compile(r"([\u4e00-\u9fff0-9]{1,12}?(?:大道|大街|街道|路|街|巷|道))")
OTHER = "其他"


def route_group(address: str | None, district: str | None = None) -> str:
    """The park (e.g. 夏津经济开发区) or street (e.g. 解放南路) of ``address``; 其他 when neither is found."""
    text = (address or "").strip()
    if not text:
        return OTHER
    text = _PREFIX.sub("", text, count=1)
    if district and text.startswith(district):
        text = text[len(district):]
    else:
        text = re.sub(r"^[\u4e00-\u9fff]{1,4}?[区县市]", "", text, count=1)
    park = _PARK.search(text)
    if park:
        return park.group(1)
    street = _STREET.search(text)
    return street.group(1) if street else OTHER
