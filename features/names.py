"""Normalisation of company names and addresses as clerks write them.

Place names are learned from the registry (``Gazetteer.from_entities``), never
hard-coded, so the same code serves any city: the province and city come from
the registered addresses, the districts from the ``district`` column, and the
development zones (开发区, 产业园 ...) with the district they belong to from the
addresses registered in them. Everything is vectorised with pandas ``str``
methods over whole columns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pandas as pd

# Legal forms, longest first so that 股份有限公司 wins over 有限公司.
LEGAL_FORMS = (
    "集团股份有限公司", "集团有限责任公司", "集团有限公司", "股份有限公司", "有限责任公司",
    "有限公司", "股份公司", "集团公司", "公司", "集团", "股份",
    "农民专业合作社", "专业合作社", "合作社", "个体工商户", "个体户",
)
# Branch and site suffixes: 分公司, 第二分厂, 二分厂, 一厂, 新厂区, 北厂区, 分店, 营业部 ...
_NUM = "一二三四五六七八九十0-9０-９"
BRANCH_SUFFIX = (
    rf"(?:第?[{_NUM}]+(?:分厂|分公司|分店|厂区|厂|车间|工区|门店|店)|分公司|分厂|分店|分部|营业部|办事处"
    r"|[新老旧东南西北]厂区?|[新老旧东南西北]区|厂区|总厂|总部|门店|车间)$"
)
SITE_SUFFIX = r"(?:项目部|项目|工地|指挥部|施工队)"
# Text after the door number that names a side or gate, not a place: 南门, 东侧, 对面, 北院, 院内.
DOOR_SUFFIX = (
    r"(?<=号)(?!楼)[^号]{1,10}$"  # 南门, 东侧, 往北100米 ... (rooms are cut before: ROOM_SUFFIX)
    r"|(?<=村)(?:[东南西北]?(?:门|侧|院|面|边|头)|对面|院内|附近|旁边?|往?[东南西北][0-9]*米?)$"
)
ROOM_SUFFIX = r"(?<=号楼)[^号]*$|(?<=号)[0-9]+(?:室|层|楼层)$"
# Words of shared industrial sites. Never decisive alone: linkage also asks that
# several registered entities share the building, or that the site lies in a
# development zone learned from the registry, and that no entity's name fits.
PARK_WORDS = r"标准化厂房|厂房|号楼|产业园|工业园|孵化|众创空间|创业中心|创业园|科技园|园区|楼宇|写字楼"
ZONE_WORDS = r"(?:经济技术开发区|高新技术产业开发区|高新技术开发区|经济开发区|开发区|高新区|工业园区|工业园|产业园区|产业园|创业园|孵化园|园区)"
ZONE_PATTERN = rf"^(.{{2,12}}?{ZONE_WORDS})"
STREET_PATTERN = r"([^\d号]{1,10}?(?:大道|大街|路|街|巷|道|线))\s*([0-9]+)号"

_FULL = "（）【】［］｛｝　，。：；、·．－—"
_HALF = "()[][]{} ,.:;,..--"
_FULL_TO_HALF = str.maketrans(_FULL + "０１２３４５６７８９", _HALF + "0123456789")


def _short(place: str) -> str:
    """德城区 -> 德城, 齐河县 -> 齐河, 德州市 -> 德州; two-character names stay as they are."""
    return place[:-1] if len(place) > 2 and place[-1] in "省市县区旗" else place


def _alternation(words) -> str:
    words = sorted({w for w in words if w}, key=len, reverse=True)
    return "|".join(re.escape(w) for w in words)


@dataclass
class Gazetteer:
    """Place names of one city, learned from its registry."""

    provinces: list[str]
    cities: list[str]
    districts: list[str]
    zone_district: dict[str, str] = field(default_factory=dict)
    street_district: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_entities(cls, entities: pd.DataFrame, min_share: float = 0.9) -> "Gazetteer":
        addr = basic_text(entities["address"])
        provinces = addr.str.extract(r"^(.{2,8}?省)")[0].dropna()
        provinces = provinces.value_counts()
        provinces = provinces[provinces >= max(2, 0.05 * len(addr))].index.tolist()
        prov_re = _alternation(provinces)
        rest = addr.str.replace(f"^(?:{prov_re})", "", regex=True) if prov_re else addr
        cities = rest.str.extract(r"^(.{2,8}?市)")[0].dropna()
        districts = sorted(set(entities["district"].dropna().astype(str)))
        cities = cities[~cities.isin(districts)].value_counts()
        cities = cities[cities >= max(2, 0.05 * len(addr))].index.tolist()
        gaz = cls(provinces, cities, districts)
        # development zones and streets -> district, kept only where one district dominates
        local = gaz.strip_places(addr)
        frame = pd.DataFrame({"district": entities["district"].astype("str").to_numpy(), "zone": local.str.extract(ZONE_PATTERN)[0].to_numpy()})
        gaz.zone_district = _dominant(frame.dropna(), "zone", min_share, min_count=2)
        after_zone = local.str.replace(ZONE_PATTERN, "", regex=True)
        frame["street"] = after_zone.str.extract(STREET_PATTERN)[0].to_numpy()
        gaz.street_district = _dominant(frame[["street", "district"]].dropna(), "street", min_share, min_count=3)
        return gaz

    # -- patterns ------------------------------------------------------
    def _place_prefix(self, short: bool) -> str:
        """Optional province, city and district at the start; ``short`` also allows 山东, 德州."""
        prov = _alternation(self.provinces + ([_short(p) for p in self.provinces] if short else []))
        city = _alternation(self.cities + ([_short(c) for c in self.cities] if short else []))
        dist = _alternation(self.districts)
        parts = [f"(?:{p})?" for p in (prov, city, dist) if p]
        return "^" + "".join(parts)

    def place_words(self) -> list[str]:
        names = self.provinces + self.cities + self.districts
        return names + [_short(n) for n in names]

    def misspelt_places(self) -> str:
        """A pattern of the place names with one character replaced (the suffix 省/市/县/区 kept)
        or two neighbouring characters swapped (乐市陵)."""
        variants = []
        for place in self.provinces + self.cities + self.districts:
            stem, suffix = place[:-1], place[-1]
            for i in range(len(stem)):
                variants.append(re.escape(stem[:i]) + "[^" + re.escape(stem[i]) + "]" + re.escape(stem[i + 1 :]) + re.escape(suffix))
            for i in range(len(place) - 1):
                swapped = place[:i] + place[i + 1] + place[i] + place[i + 2 :]
                if swapped != place:
                    variants.append(re.escape(swapped))
        return "|".join(variants)

    def strip_places(self, text: pd.Series, short: bool = False) -> pd.Series:
        return text.str.replace(self._place_prefix(short), "", regex=True)

    def district_in(self, text: pd.Series) -> pd.Series:
        """The district named in the text (full name, or short name before a zone), else <NA>."""
        dist_re = _alternation(self.districts)
        if not dist_re:
            return pd.Series(pd.NA, index=text.index, dtype="str")
        return text.str.extract(f"({dist_re})")[0].astype("str")


def _dominant(frame: pd.DataFrame, key: str, min_share: float, min_count: int) -> dict[str, str]:
    counts = frame.groupby([key, "district"]).size().rename("n").reset_index()
    totals = counts.groupby(key)["n"].transform("sum")
    counts = counts[(counts["n"] >= min_share * totals) & (totals >= min_count)]
    return dict(zip(counts[key], counts["district"]))


def basic_text(text: pd.Series) -> pd.Series:
    """Full-width to half-width, whitespace removed, Latin letters upper-cased; missing -> ''."""
    s = text.astype("str").fillna("")
    s = s.str.translate(_FULL_TO_HALF).str.replace(r"\s+", "", regex=True).str.upper()
    return s


def normalise_names(names: pd.Series, gaz: Gazetteer) -> pd.Series:
    """The distinctive core of a company name: 山东省德州市XX化工有限公司第二分厂 -> XX化工."""
    s = basic_text(names)
    places = _alternation(gaz.place_words())
    if places:  # brackets that hold a place: 康信(德州)餐饮 -> 康信餐饮
        s = s.str.replace(rf"\((?:{places})\)", "", regex=True)
    s = s.str.replace(r"\(([^()]*)\)$", r"\1", regex=True)  # (二厂) -> 二厂, handled as a suffix below
    # construction-site accounts: 山东XX置业有限公司XX花园一期项目部, XX建工陵城区雨污分流项目部
    s = s.str.replace(f"(?<=公司)[^()]{{1,24}}?{SITE_SUFFIX}$", "", regex=True)
    if places:
        s = s.str.replace(f"(?<=.{{2}})(?:{places})[^()]{{0,20}}?{SITE_SUFFIX}$", "", regex=True)
    for _ in range(2):  # 有限公司第二分厂, 分公司(二厂)
        s = s.str.replace(BRANCH_SUFFIX, "", regex=True)
        s = s.str.replace(f"(?:{_alternation(LEGAL_FORMS)})$", "", regex=True)
    s = s.str.replace(r"(?<=..)[有限责任股份公司集团]{3,}$", "", regex=True)  # a legal form with a typo: 有公限司
    s = gaz.strip_places(s, short=True)
    # a misspelt place (得州市, 德诚区): one character off a known place name
    misspelt = gaz.misspelt_places()
    if misspelt:
        s = s.str.replace(f"^(?:{misspelt})(?=.{{2}})", "", regex=True)
    s = s.str.replace(r"[()\[\]{}.,:;\-'\"/]", "", regex=True)
    return s


def normalise_addresses(addresses: pd.Series, gaz: Gazetteer) -> pd.DataFrame:
    """Address parts: ``local`` (no province/city/district, no door side), ``zone``,
    ``street`` + ``number`` (the door), ``building`` (door plus 号楼, no room) and ``district``
    (named in the address, or implied by a zone or a street that belongs to one district)."""
    s = basic_text(addresses)
    named = gaz.district_in(s.str.slice(0, 16))
    local = gaz.strip_places(s)
    local = local.str.replace(ROOM_SUFFIX, "", regex=True).str.replace(DOOR_SUFFIX, "", regex=True)
    zone = local.str.extract(ZONE_PATTERN)[0].astype("str")
    no_zone = local.str.replace(ZONE_PATTERN, "", regex=True)
    parts = no_zone.str.extract(STREET_PATTERN)
    street, number = parts[0].astype("str"), parts[1].astype("str")
    building = no_zone.str.extract(r"^(.*?号(?:[^号]{0,8}?[0-9]+号楼)?)")[0].astype("str")
    implied = zone.map(gaz.zone_district).astype("str")
    # a zone the registry does not spell this way (德城开发区): the district whose short name opens it
    shorts = {_short(d): d for d in gaz.districts if _short(d) != d}
    if shorts:
        opening = zone.str.extract(f"^({_alternation(shorts)})")[0].map(shorts).astype("str")
        implied = implied.fillna(opening)
    implied = implied.fillna(street.map(gaz.street_district).astype("str"))
    district = named.fillna(implied)
    return pd.DataFrame(
        {"local": no_zone, "zone": zone, "street": street, "number": number, "building": building, "district": district},
        index=addresses.index,
    )


def is_park_like(names: pd.Series, gaz: Gazetteer) -> pd.Series:
    """Names made of a zone and building words rather than a company: 临邑经济开发区标准化厂房5号楼."""
    s = basic_text(names)
    zones = _alternation(list(gaz.zone_district))
    zone_hit = s.str.contains(zones, regex=True) if zones else pd.Series(False, index=s.index)
    return (s.str.contains(PARK_WORDS, regex=True) | zone_hit & s.str.contains(r"[0-9]+号", regex=True)).astype(bool)
