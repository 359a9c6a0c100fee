"""Meaning, unit and officer-facing reason of every profile and snapshot column.

`DATA_DICTIONARY[name]` has keys name, meaning, meaning_zh, unit, tables
(`profile`, `snapshot` or both) and reason_zh: for snapshot features, a Chinese
sentence with a `{value}` placeholder that explains the feature when it drives
a high risk (None for keys and meta columns). `write_data_dictionary` renders
docs/data_dictionary.md from it.
"""

from __future__ import annotations

from pathlib import Path

P, S, B = ("profile",), ("snapshot",), ("profile", "snapshot")

# name, tables, unit, meaning, meaning_zh, reason_zh
_ROWS: list[tuple[str, tuple[str, ...], str, str, str, str | None]] = [
    # keys and meta
    ("uscc", B, "text", "Unified social credit code of the entity (snapshot index)", "统一社会信用代码", None),
    ("month", P, "month", "Month of the profile row (first day); only months before as_of", "月份", None),
    ("name", S, "text", "Registered name", "登记名称", None),
    ("district", S, "text", "County-level district", "所属区县", None),
    ("industry_code", S, "text", "GB/T 4754-2017 industry class", "国民经济行业分类代码", None),
    ("industry_section", S, "text", "Industry section letter (first character of the class)", "行业门类", None),
    ("employees", S, "persons", "Registered number of employees (may be empty)", "从业人数", None),
    ("size_band", S, "text", "Size by employees: micro <20, small <300, medium <1000, large, unknown", "企业规模（按从业人数）", None),
    ("active", P, "flag", "1 when the entity was registered and not deregistered in the month", "当月处于存续状态", None),
    ("permit_status", P, "text", "Permit status at the end of the month: none, valid, expiring (<=90 days), expired, revoked", "月末取水许可状态", None),
    # volumes
    ("supply_m3", P, "m³", "Public supply billed on the entity's linked accounts in the month", "当月自来水供水量", None),
    ("abstraction_m3", P, "m³", "Metered self-abstraction on the entity's permits in the month", "当月计量取水量", None),
    ("abstraction_groundwater_m3", P, "m³", "Metered abstraction from groundwater permits", "当月地下水取水量", None),
    ("abstraction_dewatering_m3", P, "m³", "Metered abstraction on dewatering permits (a construction pit's water: pumped away, not used)", "当月疏干排水计量取水量", None),
    ("abstraction_surface_m3", P, "m³", "Metered abstraction from surface-water permits", "当月地表水取水量", None),
    ("discharge_m3", P, "m³", "Sewer discharge on the entity's linked accounts in the month", "当月排水量", None),
    ("discharge_measured_share", P, "share", "Share of the month's discharge that was metered rather than estimated", "当月排水量中实测部分占比", None),
    ("inflow_m3", P, "m³", "Known water in: supply plus metered abstraction", "当月已知进水量（供水+取水）", None),
    ("supply_m3_3m", P, "m³", "Supply over the last 3 months (NaN before 3 months of data)", "近3个月供水量", None),
    ("abstraction_m3_3m", P, "m³", "Abstraction over the last 3 months", "近3个月取水量", None),
    ("discharge_m3_3m", P, "m³", "Discharge over the last 3 months", "近3个月排水量", None),
    ("inflow_m3_3m", P, "m³", "Supply plus abstraction over the last 3 months", "近3个月进水量", None),
    ("supply_m3_12m", B, "m³", "Supply over the last 12 months", "近12个月供水量", "近12个月自来水用量为{value:,.0f}立方米"),
    ("abstraction_m3_12m", B, "m³", "Metered abstraction over the last 12 months", "近12个月计量取水量", "近12个月计量取水量为{value:,.0f}立方米"),
    ("abstraction_groundwater_m3_12m", B, "m³", "Metered groundwater abstraction over the last 12 months", "近12个月地下水取水量", "近12个月地下水取水量为{value:,.0f}立方米"),
    ("discharge_m3_12m", B, "m³", "Discharge over the last 12 months", "近12个月排水量", "近12个月排水量为{value:,.0f}立方米"),
    ("inflow_m3_12m", B, "m³", "Supply plus abstraction over the last 12 months", "近12个月进水量", "近12个月已知进水量（供水+取水）为{value:,.0f}立方米"),
    ("discharge_measured_share_12m", B, "share", "Metered share of the last 12 months' discharge", "近12个月排水实测占比", "近12个月排水量中仅{value:.0%}为实测，其余为估算"),
    # balance
    ("balance_ratio", P, "ratio", "Discharge / (supply + abstraction) in the month; NaN without inflow", "当月水量平衡比（排水/进水）", None),
    ("balance_ratio_12m", B, "ratio", "Discharge / (supply + abstraction) over the last 12 months; >1 means more water out than known water in", "近12个月水量平衡比", "近12个月排水量是供水与取水量之和的{value:.1f}倍"),
    ("naive_discharge_supply_ratio", S, "ratio", "Last-12-month discharge / supply (the naive baseline rule); NaN without supply", "近12个月排水/供水比（朴素基线）", "近12个月排水量是自来水供水量的{value:.1f}倍"),
    ("discharge_without_inflow", P, "flag", "Discharge in a month with no known supply or abstraction", "当月有排水但无任何已知进水", None),
    ("discharge_without_inflow_months_12m", S, "months", "Months of the last 12 with discharge but no known water in", "近12个月有排水无进水的月数", "近12个月有{value:.0f}个月有排水却没有任何供水或取水记录"),
    ("wet_season_discharge_share_12m", B, "share", "Share of the last 12 months' discharge that fell in June-September (1/3 when flat)", "近12个月汛期（6-9月）排水占比", "近12个月排水量的{value:.0%}集中在汛期（6-9月），可能有雨水混入合流管网"),
    ("wet_dry_ratio_excess_12m", B, "ratio", "Wet-season discharge/inflow ratio over the dry-season one, minus 1 (rain inflow, not use, when high)", "汛期与非汛期排水/进水比之比减1", "汛期排水/进水比比非汛期高{value:.0%}，排水偏高可能来自雨水而非用水"),
    # level shifts
    ("balance_shift", B, "ratio points", "Change of the mean monthly balance ratio at the best split of the last 24 months (after - before)", "水量平衡比均值突变幅度", "水量平衡比较此前变化了{value:+.2f}"),
    ("balance_shift_score", B, "score", "Strength of that change (two-sample t-like score; >=4 is dated)", "水量平衡比突变显著度", "水量平衡比出现显著突变（显著度{value:.1f}）"),
    ("balance_shift_since", P, "month", "Month the significant balance-ratio shift began (empty if none)", "水量平衡比突变起始月", None),
    ("supply_shift", B, "relative", "Relative change of mean monthly supply at the best split of the last 24 months (after/before - 1, clipped to [-1, 10])", "供水量均值突变幅度", "自来水用量较此前变化{value:+.0%}"),
    ("supply_shift_score", B, "score", "Strength of the supply change (>=4 is dated)", "供水量突变显著度", "自来水用量出现显著突变（显著度{value:.1f}）"),
    ("supply_shift_since", P, "month", "Month the significant supply shift began", "供水量突变起始月", None),
    ("abstraction_shift", B, "relative", "Relative change of mean monthly metered abstraction at the best split", "取水量均值突变幅度", "计量取水量较此前变化{value:+.0%}"),
    ("abstraction_shift_score", B, "score", "Strength of the abstraction change (>=4 is dated)", "取水量突变显著度", "计量取水量出现显著突变（显著度{value:.1f}）"),
    ("abstraction_shift_since", P, "month", "Month the significant abstraction shift began", "取水量突变起始月", None),
    ("discharge_shift", B, "relative", "Relative change of mean monthly discharge at the best split", "排水量均值突变幅度", "排水量较此前变化{value:+.0%}"),
    ("discharge_shift_score", B, "score", "Strength of the discharge change (>=4 is dated)", "排水量突变显著度", "排水量出现显著突变（显著度{value:.1f}）"),
    ("discharge_shift_since", P, "month", "Month the significant discharge shift began", "排水量突变起始月", None),
    ("months_since_balance_shift", S, "months", "Months from the start of a significant balance-ratio shift to as_of (NaN if none)", "水量平衡比突变至今月数", "水量平衡比自{value:.0f}个月前起发生突变"),
    ("months_since_supply_shift", S, "months", "Months since a significant supply shift began", "供水量突变至今月数", "自来水用量自{value:.0f}个月前起发生突变"),
    ("months_since_abstraction_shift", S, "months", "Months since a significant abstraction shift began", "取水量突变至今月数", "计量取水量自{value:.0f}个月前起发生突变"),
    ("months_since_discharge_shift", S, "months", "Months since a significant discharge shift began", "排水量突变至今月数", "排水量自{value:.0f}个月前起发生突变"),
    ("supply_trend_6v12", S, "relative", "Mean supply of the last 6 months over the 12 months before them, minus 1", "近6个月供水较前12个月变化", "近6个月自来水用量较此前12个月变化{value:+.0%}"),
    ("abstraction_trend_6v12", S, "relative", "Mean abstraction of the last 6 months over the 12 before, minus 1", "近6个月取水较前12个月变化", "近6个月计量取水量较此前12个月变化{value:+.0%}"),
    ("discharge_trend_6v12", S, "relative", "Mean discharge of the last 6 months over the 12 before, minus 1", "近6个月排水较前12个月变化", "近6个月排水量较此前12个月变化{value:+.0%}"),
    # peers
    ("use_per_employee_12m", B, "m³/person", "Supply plus abstraction per employee at a year's rate: over the last 12 months, or the months the entity existed in them when fewer (6 at least)", "近12个月人均用水量", "近12个月人均用水{value:,.0f}立方米"),
    ("use_per_employee_peer_z", B, "z", "Robust z-score (median/MAD, on log10(1 + x)) of use per employee against the same industry class in the month, or its section when the class has <8 peers", "人均用水量同行业稳健Z值", "人均用水量偏离同行业中位数{value:+.1f}个稳健标准差"),
    ("balance_ratio_peer_z", B, "z", "Robust z-score of the 12-month balance ratio against the same industry class (or section)", "水量平衡比同行业稳健Z值", "水量平衡比偏离同行业中位数{value:+.1f}个稳健标准差"),
    # meters
    ("flat_run_months", B, "months", "Longest current run of identical non-zero monthly readings on one of the entity's meters", "计量读数连续不变月数", "取水计量读数已连续{value:.0f}个月完全相同"),
    ("flat_reading", P, "flag", "A meter has repeated the same non-zero reading for 3 or more months", "读数连续3个月以上不变", None),
    ("flat_reading_months_12m", S, "months", "Months of the last 12 with a flat (repeated) meter reading", "近12个月读数不变月数", "近12个月有{value:.0f}个月取水读数连续不变"),
    ("manual_share", P, "share", "Share of the month's meter readings taken manually", "当月人工抄表占比", None),
    ("manual_share_12m", S, "share", "Mean share of manual meter readings over the last 12 months", "近12个月人工抄表占比", "近12个月{value:.0%}的取水读数为人工抄报"),
    ("zero_while_permitted", P, "flag", "Meters reported zero abstraction while a permit was in force", "许可有效期内取水量为零", None),
    ("zero_while_permitted_months_12m", S, "months", "Months of the last 12 with zero metered abstraction under a valid permit", "近12个月许可有效但取水为零的月数", "许可有效期内有{value:.0f}个月计量取水为零"),
    ("abstraction_missing", P, "flag", "A permit was in force but no meter reported for the month", "许可有效但当月无计量数据", None),
    ("abstraction_missing_months_12m", S, "months", "Months of the last 12 with a permit in force but no meter data", "近12个月取水计量缺报月数", "许可有效期内有{value:.0f}个月没有取水计量数据"),
    ("abstraction_without_permit", P, "flag", "Metered abstraction in a month with no permit in force", "无有效许可仍有取水", None),
    ("abstraction_without_permit_months_12m", S, "months", "Months of the last 12 with abstraction but no permit in force", "近12个月无证取水月数", "近12个月有{value:.0f}个月在无有效许可的情况下取水"),
    ("supply_missing", P, "flag", "No supply billing in the month although the entity had supply before", "当月供水账单缺失", None),
    ("supply_missing_months_12m", S, "months", "Months of the last 12 with missing supply billing", "近12个月供水缺失月数", "近12个月有{value:.0f}个月没有自来水账单"),
    ("discharge_missing", P, "flag", "No discharge record in the month although the entity had discharge before", "当月排水记录缺失", None),
    ("discharge_missing_months_12m", S, "months", "Months of the last 12 with missing discharge records", "近12个月排水缺失月数", "近12个月有{value:.0f}个月没有排水记录"),
    ("supply_drop", P, "flag", "Supply below 30 % of its trailing 12-month median (needs 6 months of history)", "供水量骤降", None),
    ("abstraction_drop", P, "flag", "Metered abstraction below 30 % of its trailing 12-month median", "取水量骤降", None),
    ("discharge_drop", P, "flag", "Discharge below 30 % of its trailing 12-month median", "排水量骤降", None),
    ("supply_drop_months_12m", S, "months", "Months of the last 12 with a sudden supply drop", "近12个月供水骤降月数", "近12个月有{value:.0f}个月自来水用量骤降至不足此前中位数的30%"),
    ("abstraction_drop_months_12m", S, "months", "Months of the last 12 with a sudden abstraction drop", "近12个月取水骤降月数", "近12个月有{value:.0f}个月计量取水量骤降至不足此前中位数的30%"),
    ("discharge_drop_months_12m", S, "months", "Months of the last 12 with a sudden discharge drop", "近12个月排水骤降月数", "近12个月有{value:.0f}个月排水量骤降至不足此前中位数的30%"),
    # permits, quota, plan
    ("permits_in_force", B, "count", "Valid permits in force at the end of the month", "有效取水许可证数", "持有{value:.0f}个有效取水许可证"),
    ("groundwater_permits_in_force", B, "count", "Valid groundwater permits in force", "有效地下水取水许可证数", "持有{value:.0f}个有效地下水取水许可证"),
    ("quota_in_force_m3", B, "m³/year", "Annual quota summed over permits in force", "有效许可年度许可水量合计", "有效许可年度水量合计{value:,.0f}立方米"),
    ("permit_days_to_expiry", B, "days", "Days from the end of the month to the earliest expiry among permits in force", "最近一个许可证距到期天数", "取水许可证{value:.0f}天后到期"),
    ("permit_none", S, "flag", "Never held a permit known at as_of", "无取水许可", "从未持有取水许可证"),
    ("permit_valid", S, "flag", "Holds a valid permit not expiring within 90 days", "许可有效", "持有有效取水许可证"),
    ("permit_expiring", S, "flag", "Holds a valid permit expiring within 90 days", "许可即将到期（90天内）", "取水许可证将在90天内到期"),
    ("permit_expired", S, "flag", "Only expired permits (none in force)", "许可已过期", "取水许可证已过期且未延续"),
    ("permit_revoked", S, "flag", "Permits revoked or cancelled, none in force", "许可已吊销或注销", "取水许可证已被吊销或注销"),
    ("abstraction_ytd_m3", P, "m³", "Metered abstraction from January to the month (NaN when January precedes the data)", "年初至今取水量", None),
    ("quota_used_ytd", B, "share", "Abstraction year to date / annual quota in force", "年度许可水量已用比例", "今年以来取水量已达年度许可水量的{value:.0%}"),
    ("quota_used_12m", S, "share", "Abstraction over the last 12 months / the quota its water-use permits (not dewatering) allowed over those months", "近12个月取水占同期许可水量比例", "近12个月取水量为同期许可水量的{value:.0%}"),
    ("planned_m3", P, "m³/year", "Planned volume of the year in the water-use plan", "年度计划用水量", None),
    ("use_ytd_m3", P, "m³", "Supply plus abstraction from January to the month", "年初至今用水量", None),
    ("plan_used_ytd", B, "share", "(Supply + abstraction) year to date / planned volume of the year", "年度计划用水已用比例", "今年以来用水量已达年度计划的{value:.0%}"),
    # tax
    ("tax_declared_m3_q", P, "m³", "Volume declared for water-resource tax in the latest quarter ended by the month", "最近一季申报水量", None),
    ("tax_metered_m3_q", P, "m³", "Metered abstraction in that quarter", "最近一季计量取水量", None),
    ("tax_gap_m3_q", B, "m³", "Metered minus declared volume in the latest ended quarter (positive: under-declared)", "最近一季计量与申报水量差", "最近一季计量取水比纳税申报多{value:,.0f}立方米"),
    ("tax_declared_ratio_q", B, "ratio", "Declared / metered volume in the latest ended quarter", "最近一季申报/计量比", "最近一季纳税申报水量仅为计量取水量的{value:.0%}"),
    ("tax_declared_m3_4q", P, "m³", "Declared volume over the last 4 ended quarters", "近4季申报水量", None),
    ("tax_metered_m3_4q", P, "m³", "Metered abstraction over the last 4 ended quarters", "近4季计量取水量", None),
    ("tax_declared_ratio_4q", B, "ratio", "Declared / metered volume over the last 4 ended quarters", "近4季申报/计量比", "近4个季度纳税申报水量为计量取水量的{value:.0%}"),
    # compliance evidence (snapshot): documented breaches an officer can act on
    ("abstraction_no_valid_permit_m3_12m", S, "m³", "Metered abstraction in the last 12 months in months when the entity held no permit in force", "近12个月无有效许可期间计量取水量", "近12个月在无有效取水许可的月份计量取水{value:,.0f}立方米"),
    ("abstraction_no_valid_permit_share_12m", S, "share", "That volume / all metered abstraction of the last 12 months (NaN without metering)", "近12个月无有效许可取水占比", "近12个月计量取水中有{value:.0%}发生在无有效许可期间"),
    ("abstraction_after_expiry_m3_12m", S, "m³", "Metered abstraction in the last 12 months on permits after their valid_to date", "近12个月许可证到期后计量取水量", "近12个月在取水许可证过期后仍计量取水{value:,.0f}立方米"),
    ("abstraction_withdrawn_permit_m3_12m", S, "m³", "Metered abstraction in the last 12 months on permits now revoked or cancelled (before expiry; not one a renewal replaced)", "近12个月已吊销/注销许可证下计量取水量", "近12个月在已吊销或注销的取水许可证下计量取水{value:,.0f}立方米"),
    ("permit_quota_used_max_12m", S, "share", "Largest over the entity's permits of last-12-month metered abstraction / the permit's annual quota", "单证近12个月取水占许可水量最高比例", "单个取水许可证近12个月取水量达年度许可水量的{value:.0%}"),
    ("permit_quota_pace_max_3m", S, "share", "Largest over the permits of the last 3 months' abstraction x 4 / annual quota (the current pace)", "单证近3个月取水年化后占许可水量最高比例", "按近3个月取水速度，单证全年取水将达许可水量的{value:.0%}"),
    ("quota_excess_m3_12m", S, "m³", "Sum over the permits of last-12-month abstraction above the annual quota", "近12个月超许可取水量", "近12个月超出年度许可水量取水{value:,.0f}立方米"),
    ("tax_undeclared_m3_4q", S, "m³", "Metered (gap-filled, non-agricultural permits) minus declared volume over the last 4 ended quarters, a quarter a meter sent no reading for left out unless metered already exceeds declared; NaN with neither tax nor such metering", "近4季计量多于申报的水量", "近4个季度计量取水比纳税申报多{value:,.0f}立方米"),
    ("tax_undeclared_share_4q", S, "share", "Median over the last 4 ended quarters of (metered - declared) / max(metered, declared): under-declaring quarter after quarter", "近4季少申报比例（季度中位数）", "近4个季度每季少申报水资源税水量约{value:.0%}"),
    ("tax_declared_without_permit_m3_4q", S, "m³", "Volume declared for tax in the last 4 ended quarters for a source no permit of the entity covered in that quarter", "近4季无对应许可的申报取水量", "近4个季度申报取水{value:,.0f}立方米，但同期无对应水源的取水许可"),
    # own history (snapshot): shifts against the entity's own past, last 36 months
    ("balance_log_shift", S, "log ratio", "Step of log(discharge / (supply + metered abstraction)) at its best split in the last 36 months (after - before); NaN without discharge", "水量平衡比（对数）自身历史突变幅度", "排水量相对已知进水量较自身此前水平上升至{value:+.2f}（对数）"),
    ("balance_log_shift_score", S, "score", "t-like significance of that step", "水量平衡比（对数）突变显著性", "排水与进水之比出现显著的持续上升（显著性{value:.1f}）"),
    ("meter_drop_vs_activity", S, "log ratio", "At the metered abstraction's own best split in the last 36 months: step of log discharge (else supply) minus step of log abstraction; > 0 the meter fell more than the water it should follow", "计量取水相对排水（或供水）下降幅度", "计量取水量较自身此前明显下降，而排水（或供水）基本未变（相对降幅{value:.2f}，对数）"),
    ("meter_drop_vs_activity_score", S, "score", "t-like significance of the metered abstraction's step", "计量取水突变显著性", "计量取水量出现显著的持续变化（显著性{value:.1f}）"),
    # hidden water (snapshot, features.hidden_water): what no record explains
    ("balance_dry_months_12m", S, "months", "Dry-season (October-May) months of the last 12 with metered discharge (at least half of the month's discharge metered)", "近12个月旱季实测排水月数", "近12个月有{value:.0f}个旱季月份有实测排水"),
    ("balance_dry_log_12m", S, "log ratio", "log((metered dry-season discharge + 10 m³ a month) / (supply + metered abstraction of those months + 10 m³ a month)) over the last 12 months; NaN with fewer than 4 such months", "近12个月旱季实测排水与已知进水之比（对数）", "近12个月旱季实测排水量与已知进水量之比的对数为{value:.2f}"),
    ("balance_dry_ratio_12m", S, "ratio", "Metered dry-season discharge / (supply + metered abstraction) of the same months, last 12 months; NaN without known water in", "近12个月旱季实测排水与已知进水之比", "近12个月旱季实测排水量是同期供水与计量取水量之和的{value:.1f}倍"),
    ("balance_dry_step", S, "log ratio", "Step of the monthly log dry-season metered balance at its best split in the last 36 months (after - before; exp of it is the after/before ratio)", "旱季实测水量平衡比自身历史突变（对数）", "旱季实测排水量与进水量之比较此前变为{value:+.2f}（对数）"),
    ("balance_dry_step_score", S, "score", "t-like significance of that step", "旱季实测水量平衡比突变显著性", "旱季实测排水与进水之比出现持续变化（显著性{value:.1f}）"),
    ("months_since_balance_dry_step", S, "months", "Months from the start of that step to as_of", "旱季水量平衡比突变至今月数", "旱季排水与进水之比约{value:.0f}个月前开始变化"),
    ("inflow_step", S, "log ratio", "Step of log(1 + supply + metered abstraction) at its best split in the last 36 months (after - before)", "已知进水量自身历史突变（对数）", "供水与计量取水量较此前变为{value:+.2f}（对数）"),
    ("inflow_step_score", S, "score", "t-like significance of that step", "已知进水量突变显著性", "供水与计量取水量出现持续变化（显著性{value:.1f}）"),
    ("months_since_inflow_step", S, "months", "Months from the start of that step to as_of", "已知进水量突变至今月数", "供水与计量取水量约{value:.0f}个月前开始变化"),
    ("inflow_step_supply_share", S, "share", "Change of the mean monthly supply at that step, as a share of the known water in before it", "进水突变中供水变化占比", "该次变化中供水量的变化相当于此前进水量的{value:+.0%}"),
    ("meter_step", S, "log ratio", "Step of log(1 + metered abstraction) at its best split in the last 36 months (after - before); NaN without metering", "计量取水自身历史突变（对数）", "计量取水量较此前变为{value:+.2f}（对数）"),
    ("meter_step_score", S, "score", "t-like significance of the meter's step", "计量取水突变显著性", "计量取水量出现持续变化（显著性{value:.1f}）"),
    ("months_since_meter_step", S, "months", "Months from the start of the meter's step to as_of", "计量取水突变至今月数", "计量取水量约{value:.0f}个月前开始变化"),
    ("meter_unexplained_drop_share", S, "share", "The meter's fall at its step minus the supply that rose to replace it and minus the fall a drop of all supply alike explains, as a share of the meter's own volume before it (> 0: water the records lost)", "计量取水下降中无法解释的部分占比", "计量取水量下降中，未由供水增加或整体减产解释的部分相当于此前计量水量的{value:.0%}"),
    ("water_recent_share_3m", S, "share", "Supply + metered abstraction + metered discharge of the last 3 months (monthly mean) over that of the 12 months before; near 0: the entity stopped drawing water (closed or asleep)", "近3个月用水与此前12个月之比", "近3个月已知用水与实测排水为此前12个月月均的{value:.0%}"),
    ("inflow_after_share", S, "share", "At the step of the known water in: the monthly mean after it over the mean before it", "已知进水突变后与突变前之比", "供水与计量取水量降至此前的{value:.0%}"),
    ("inflow_recovered_share", S, "share", "Of a step down of the known water in: how much the latest months (too recent for a step of their own, MIN_SEGMENT - 1) climbed back, (latest - after) / (before - after); 1: back at the level before it, a pause that ended", "进水下降后最近月份的回升比例", "最近月份的已知进水已回升了此前下降量的{value:.0%}"),
    ("plan_used_12m", S, "share", "Known water in (supply + metered abstraction) over the last 12 months / the annual water-use plan of the last month's year, pro rata the months the entity existed (6 at least); a month with no supply bill between two bills read at the bills around it", "近12个月已知用水占同期计划用水比例", "近12个月已知用水量为同期计划用水量的{value:.0%}"),
    # linkage
    ("link_confidence_min", B, "0-1", "Lowest linkage confidence among the entity's linked supply/discharge accounts billed by the month", "关联账户最低置信度", "供排水账户与企业的关联置信度最低为{value:.2f}，数据归属需核实"),
    ("link_confidence_mean", B, "0-1", "Mean linkage confidence of the linked accounts billed by the month", "关联账户平均置信度", "供排水账户关联平均置信度为{value:.2f}"),
    ("linked_accounts", B, "count", "Number of supply and discharge accounts linked to the entity, each from the month of its first bill on", "关联供排水账户数", "关联了{value:.0f}个供排水账户"),
    # registry and projects
    ("entity_age_years", S, "years", "Years since registration", "成立年限", "企业成立{value:.1f}年"),
    ("registered_capital_wan", S, "10k yuan", "Registered capital", "注册资本（万元）", "注册资本{value:,.0f}万元"),
    ("dewatering_projects", S, "count", "Projects with foundation-pit dewatering whose construction started before as_of", "已开工的需疏干排水项目数", "有{value:.0f}个需基坑疏干排水的在建项目"),
    ("dewatering_without_permit", S, "flag", "Dewatering works started and no dewatering permit in force at any time since their start", "疏干排水项目无有效许可", "在建项目需疏干排水，但开工以来未持有有效的疏干排水取水许可"),
    ("dewatering_permits_only", S, "flag", "Every permit the entity held was a dewatering permit (temporary: the pit's wells end with the works)", "仅持有疏干排水许可", "所持取水许可均为临时性疏干排水许可"),
]

DATA_DICTIONARY: dict[str, dict] = {
    name: {"name": name, "meaning": meaning, "meaning_zh": zh, "unit": unit, "tables": tables, "reason_zh": reason}
    for name, tables, unit, meaning, zh, reason in _ROWS
}


def render_data_dictionary() -> str:
    lines = [
        "# Data dictionary: monthly profiles and entity snapshot",
        "",
        "Generated by `features.dictionary.write_data_dictionary`; do not edit by hand.",
        "Profile rows are (uscc, month) for months before as_of; snapshot rows are one per",
        "existing entity at as_of. `reason_zh` is what an officer reads when the feature",
        "drives a high risk (`{value}` is the entity's value).",
        "",
    ]
    for table in ("profile", "snapshot"):
        lines += [f"## {table}", "", "| column | unit | meaning | 含义 | reason_zh |", "|---|---|---|---|---|"]
        for entry in DATA_DICTIONARY.values():
            if table in entry["tables"]:
                reason = (entry["reason_zh"] or "").replace("|", "\\|")
                lines.append(
                    f"| `{entry['name']}` | {entry['unit']} | {entry['meaning']} | {entry['meaning_zh']} | {reason} |"
                )
        lines.append("")
    return "\n".join(lines)


def write_data_dictionary(path: Path | str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_data_dictionary(), encoding="utf-8")
    return path
