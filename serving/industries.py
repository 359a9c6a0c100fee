"""Industry names of GB/T 4754-2017 (国民经济行业分类) for the codes registrations carry (section letter + 4
digits, e.g. ``C1713``): the class when we list it, else its division (first two digits), else its section.
A display table, not the standard: it names the classes the cities' registers use and every division and
section a class may fall back to."""

from __future__ import annotations

SECTIONS = {
    "A": ("农、林、牧、渔业", "Agriculture, forestry, animal husbandry and fishery"),
    "B": ("采矿业", "Mining"),
    "C": ("制造业", "Manufacturing"),
    "D": ("电力、热力、燃气及水生产和供应业", "Electricity, heat, gas and water supply"),
    "E": ("建筑业", "Construction"),
    "F": ("批发和零售业", "Wholesale and retail trade"),
    "G": ("交通运输、仓储和邮政业", "Transport, storage and post"),
    "H": ("住宿和餐饮业", "Accommodation and catering"),
    "I": ("信息传输、软件和信息技术服务业", "Information, software and IT services"),
    "J": ("金融业", "Finance"),
    "K": ("房地产业", "Real estate"),
    "L": ("租赁和商务服务业", "Leasing and business services"),
    "M": ("科学研究和技术服务业", "Scientific research and technical services"),
    "N": ("水利、环境和公共设施管理业", "Water, environment and public facilities management"),
    "O": ("居民服务、修理和其他服务业", "Resident services, repair and other services"),
    "P": ("教育", "Education"),
    "Q": ("卫生和社会工作", "Health and social work"),
    "R": ("文化、体育和娱乐业", "Culture, sports and entertainment"),
    "S": ("公共管理、社会保障和社会组织", "Public administration and social organisations"),
    "T": ("国际组织", "International organisations"),
}

DIVISIONS = {
    "01": ("农业", "Farming"), "02": ("林业", "Forestry"), "03": ("畜牧业", "Animal husbandry"),
    "04": ("渔业", "Fishery"), "05": ("农、林、牧、渔专业及辅助性活动", "Farming support services"),
    "06": ("煤炭开采和洗选业", "Coal mining"), "10": ("非金属矿采选业", "Non-metallic mineral mining"),
    "13": ("农副食品加工业", "Agricultural food processing"), "14": ("食品制造业", "Food manufacturing"),
    "15": ("酒、饮料和精制茶制造业", "Liquor, beverages and tea"), "17": ("纺织业", "Textiles"),
    "18": ("纺织服装、服饰业", "Clothing"), "19": ("皮革、毛皮、羽毛及其制品和制鞋业", "Leather and footwear"),
    "20": ("木材加工和木、竹、藤、棕、草制品业", "Wood products"), "21": ("家具制造业", "Furniture"),
    "22": ("造纸和纸制品业", "Paper and paper products"), "23": ("印刷和记录媒介复制业", "Printing"),
    "25": ("石油、煤炭及其他燃料加工业", "Petroleum and coal processing"),
    "26": ("化学原料和化学制品制造业", "Chemicals"), "27": ("医药制造业", "Pharmaceuticals"),
    "28": ("化学纤维制造业", "Chemical fibres"), "29": ("橡胶和塑料制品业", "Rubber and plastics"),
    "30": ("非金属矿物制品业", "Non-metallic mineral products"),
    "31": ("黑色金属冶炼和压延加工业", "Iron and steel"), "32": ("有色金属冶炼和压延加工业", "Non-ferrous metals"),
    "33": ("金属制品业", "Metal products"), "34": ("通用设备制造业", "General machinery"),
    "35": ("专用设备制造业", "Special machinery"), "36": ("汽车制造业", "Motor vehicles"),
    "38": ("电气机械和器材制造业", "Electrical equipment"),
    "39": ("计算机、通信和其他电子设备制造业", "Computers and electronics"),
    "44": ("电力、热力生产和供应业", "Electricity and heat supply"), "45": ("燃气生产和供应业", "Gas supply"),
    "46": ("水的生产和供应业", "Water supply"), "47": ("房屋建筑业", "Building construction"),
    "48": ("土木工程建筑业", "Civil engineering"), "49": ("建筑安装业", "Installation"),
    "50": ("建筑装饰、装修和其他建筑业", "Building finishing"), "51": ("批发业", "Wholesale"),
    "52": ("零售业", "Retail"), "54": ("道路运输业", "Road transport"), "59": ("装卸搬运和仓储业", "Storage"),
    "61": ("住宿业", "Accommodation"), "62": ("餐饮业", "Catering"),
    "65": ("软件和信息技术服务业", "Software and IT services"), "70": ("房地产业", "Real estate"),
    "71": ("租赁业", "Leasing"), "72": ("商务服务业", "Business services"),
    "77": ("生态保护和环境治理业", "Environmental protection"), "78": ("公共设施管理业", "Public facilities"),
    "80": ("居民服务业", "Resident services"), "81": ("机动车、电子产品和日用产品修理业", "Repair services"),
    "83": ("教育", "Education"), "84": ("卫生", "Health care"), "89": ("体育", "Sports"),
}

CLASSES = {
    "A0112": ("小麦种植", "Wheat growing"), "A0141": ("蔬菜种植", "Vegetable growing"),
    "A0311": ("牛的饲养", "Cattle raising"), "A0313": ("猪的饲养", "Pig raising"),
    "C1311": ("稻谷加工", "Rice milling"), "C1351": ("牲畜屠宰", "Livestock slaughtering"),
    "C1391": ("淀粉及淀粉制品制造", "Starch products"), "C1440": ("乳制品制造", "Dairy products"),
    "C1441": ("液体乳制造", "Liquid milk"), "C1512": ("白酒制造", "Baijiu distilling"),
    "C1513": ("啤酒制造", "Brewing"), "C1522": ("瓶（罐）装饮用水制造", "Bottled water"),
    "C1523": ("果菜汁及果菜汁饮料制造", "Fruit and vegetable juices"), "C1711": ("棉纺纱加工", "Cotton spinning"),
    "C1713": ("棉印染精加工", "Cotton printing and dyeing"),
    "C1752": ("化纤织物染整精加工", "Synthetic fabric dyeing and finishing"),
    "C2110": ("木质家具制造", "Wooden furniture"), "C2221": ("机制纸及纸板制造", "Paper and paperboard"),
    "C2614": ("有机化学原料制造", "Organic chemicals"), "C2621": ("氮肥制造", "Nitrogen fertiliser"),
    "C2710": ("化学药品原料药制造", "Active pharmaceutical ingredients"),
    "C2922": ("塑料板、管、型材制造", "Plastic sheets, pipes and profiles"),
    "C2927": ("日用塑料制品制造", "Household plastics"), "C3011": ("水泥制造", "Cement"),
    "C3110": ("炼铁", "Iron making"), "C3120": ("炼钢", "Steel making"), "C3130": ("钢压延加工", "Steel rolling"),
    "C3311": ("金属结构制造", "Metal structures"),
    "C3360": ("金属表面处理及热处理加工", "Metal surface and heat treatment"),
    "C3489": ("其他通用零部件制造", "Other general machine parts"),
    "C3670": ("汽车零部件及配件制造", "Motor vehicle parts"), "C3982": ("电子电路制造", "Electronic circuits"),
    "D4411": ("火力发电", "Thermal power"), "D4430": ("热力生产和供应", "Heat supply"),
    "D4610": ("自来水生产和供应", "Tap water supply"), "E4710": ("住宅房屋建筑", "Residential building"),
    "E4720": ("体育场馆建筑", "Sports venues"), "E4813": ("市政道路工程建筑", "Municipal roads"),
    "F5199": ("其他未列明批发业", "Other wholesale"), "F5211": ("百货零售", "Department stores"),
    "F5212": ("超级市场零售", "Supermarkets"), "F5261": ("汽车新车零售", "New car retail"),
    "G5430": ("道路货物运输", "Road freight"), "G5431": ("普通货物道路运输", "General road freight"),
    "H6110": ("旅游饭店", "Tourist hotels"), "H6120": ("一般旅馆", "Hotels"), "H6210": ("正餐服务", "Restaurants"),
    "I6510": ("软件开发", "Software development"), "I6513": ("应用软件开发", "Application software"),
    "K7010": ("房地产开发经营", "Real estate development"), "L7212": ("投资与资产管理", "Investment management"),
    "O8051": ("洗染服务", "Laundry and dyeing"), "O8111": ("汽车修理与维护", "Car repair"),
    "Q8411": ("综合医院", "General hospitals"),
}


def industry_name(code: str | None, lang: str = "zh") -> str:
    """The most precise name we have for ``code`` (class, else division, else section); '—' without a code."""
    if not code:
        return "—"
    code = str(code).strip().upper()
    i = 1 if lang == "en" else 0
    for table, key in ((CLASSES, code), (DIVISIONS, code[1:3]), (SECTIONS, code[:1])):
        if key in table:
            return table[key][i]
    return code


def codes_named(text: str, codes, lang: str = "zh") -> list[str]:
    """Which of ``codes`` have a name (in either language) containing ``text``."""
    text = text.strip().lower()
    if not text:
        return []
    return [c for c in codes if c and (text in industry_name(c, "zh").lower() or text in industry_name(c, "en").lower()
                                       or text in str(c).lower())]
