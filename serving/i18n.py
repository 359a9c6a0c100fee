"""Console strings in Chinese (the default) and English.

Every visible string of the console goes through ``t``; the data itself (names, reasons, alert
messages) stays as the departments wrote it. A key missing from a language falls back to Chinese,
then to the key, so a forgotten translation shows up as readable text rather than a crash.
"""

from __future__ import annotations

from serving.settings import DISPLAY_TIMEZONE

LANGS = ("zh", "en")
DEFAULT_LANG = "zh"

STRINGS: dict[str, tuple[str, str]] = {
    # frame
    "app.title": ("水资源违法取水线索平台", "WaterWatch"),
    "app.subtitle": ("{bureau} · 水行政执法", "{bureau} · water enforcement"),
    "app.subtitle_tail": ("水行政执法", "water enforcement"),
    "nav.queue": ("线索队列", "Lead queue"),
    "nav.dashboard": ("全市总览", "City dashboard"),
    "nav.logout": ("退出", "Log out"),
    "nav.lang_other": ("English", "中文"),
    "nav.signed_in_as": ("当前用户", "Signed in as"),
    "nav.skip": ("跳到正文", "Skip to content"),
    # login
    "login.title": ("登录", "Log in"),
    "login.username": ("用户名", "Username"),
    "login.password": ("密码", "Password"),
    "login.submit": ("登录", "Log in"),
    "login.failed": ("用户名或密码错误", "Wrong username or password"),
    "login.expired": ("登录已过期，请重新登录", "Your session expired, please log in again"),
    "login.csrf": ("登录页面已失效或并非来自本系统，请重新登录",
                   "The login form expired or did not come from this site: please log in again"),
    "login.hint": ("请使用单位分配的账号登录", "Use the account issued by the bureau"),
    # roles
    "role.officer": ("水行政服务官", "Field officer"),
    "role.supervisor": ("督查负责人", "Supervisor"),
    "role.analyst": ("数据分析员", "Analyst"),
    "role.admin": ("系统管理员", "Administrator"),
    # lead statuses
    "status.new": ("待处理", "New"),
    "status.assigned": ("已分派", "Assigned"),
    "status.in_progress": ("核查中", "In progress"),
    "status.closed": ("已结案", "Closed"),
    "status.all": ("全部", "All"),
    "status.open": ("未结案", "Open"),
    # outcomes and violation types
    "outcome.violation": ("存在违法", "Violation"),
    "outcome.no_violation": ("未发现违法", "No violation"),
    "outcome.unreachable": ("无法核查", "Unreachable"),
    "vt.unpermitted_abstraction": ("无证取水", "Unpermitted abstraction"),
    "vt.private_well": ("私自打井", "Private well"),
    "vt.meter_tampering": ("计量设施作假", "Meter tampering"),
    "vt.over_permit": ("超许可取水", "Over permit"),
    "vt.expired_permit": ("许可过期取水", "Expired permit"),
    "vt.tax_underreport": ("少报水资源税", "Tax under-reporting"),
    # alert kinds and levels
    "kind.quota": ("超许可水量", "Quota"),
    "kind.quota_projection": ("预计超许可", "Quota projection"),
    "kind.renewal": ("许可续期提醒", "Permit renewal"),
    "kind.expired_permit": ("许可已过期", "Expired permit"),
    "kind.unpermitted": ("无证取水", "Unpermitted"),
    "kind.tax_mismatch": ("水资源税不符", "Tax mismatch"),
    "kind.meter_data_missing": ("计量数据缺失", "Meter data missing"),
    "kind.source_prevention": ("源头管控提示", "Source prevention"),
    "level.red": ("红色", "Red"),
    "level.orange": ("橙色", "Orange"),
    "level.yellow": ("黄色", "Yellow"),
    "level.warning": ("预警", "Warning"),
    "level.notice": ("提示", "Notice"),
    "level.reminder_90": ("90天提醒", "90-day reminder"),
    "level.reminder_60": ("60天提醒", "60-day reminder"),
    # outbox
    "outbox.queued": ("待发送", "Queued"),
    "outbox.sent": ("已发送", "Sent"),
    "outbox.failed": ("发送失败", "Failed"),
    # queue
    "queue.title": ("我的线索队列", "My lead queue"),
    "queue.title_all": ("线索队列", "Lead queue"),
    "queue.district": ("辖区", "District"),
    "queue.position": ("顺序", "Order"),
    "queue.entity": ("单位", "Entity"),
    "queue.risk": ("风险", "Risk"),
    "queue.top_reason": ("主要原因", "Top reason"),
    "queue.status": ("状态", "Status"),
    "queue.officer": ("负责人", "Officer"),
    "queue.open": ("查看", "Open"),
    "queue.filter_status": ("状态", "Status"),
    "queue.filter_kind": ("预警类型", "Alert kind"),
    "queue.filter_text": ("原因或单位名称", "Reason or name"),
    "queue.filter_apply": ("筛选", "Filter"),
    "queue.filter_clear": ("清除", "Clear"),
    "queue.empty": ("没有符合条件的线索", "No leads match"),
    "queue.count": ("共 {n} 条线索", "{n} leads"),
    "queue.any_kind": ("全部类型", "Any kind"),
    "queue.any_district": ("全部辖区", "All districts"),
    "queue.city": ("城市", "City"),
    "queue.any_city": ("全部城市", "All cities"),
    "queue.summary_open": ("未结案", "Open"),
    "queue.summary_closed": ("已结案", "Closed"),
    "queue.summary_violations": ("查实违法", "Violations found"),
    "queue.prev": ("上一页", "Previous"),
    "queue.next": ("下一页", "Next"),
    "queue.page": ("第 {page} / {pages} 页", "Page {page} of {pages}"),
    # lead page
    "lead.back": ("返回队列", "Back to queue"),
    "lead.facts": ("登记信息", "Registration"),
    "lead.uscc": ("统一社会信用代码", "Unified social credit code"),
    "lead.industry": ("行业代码", "Industry code"),
    "lead.address": ("地址", "Address"),
    "lead.registered_on": ("成立日期", "Registered"),
    "lead.deregistered_on": ("注销日期", "Deregistered"),
    "lead.employees": ("从业人数", "Employees"),
    "lead.permits": ("取水许可", "Abstraction permits"),
    "lead.no_permits": ("无取水许可记录", "No abstraction permit on record"),
    "lead.permit_id": ("许可证号", "Permit"),
    "lead.source": ("水源", "Source"),
    "lead.purpose": ("用途", "Purpose"),
    "lead.quota": ("年许可水量 (m³)", "Annual quota (m³)"),
    "lead.valid": ("有效期", "Valid"),
    "lead.permit_status": ("状态", "Status"),
    "lead.accounts": ("关联的供水与排水账户", "Linked supply and sewer accounts"),
    "lead.no_accounts": ("没有关联的账户", "No linked account"),
    "lead.account": ("账户", "Account"),
    "lead.account_name": ("户名", "Account name"),
    "lead.account_source": ("来源", "Source"),
    "lead.method": ("匹配方式", "Method"),
    "lead.confidence": ("匹配可信度", "Link confidence"),
    "lead.chart": ("逐月水量", "Monthly volumes"),
    "lead.no_series": ("没有逐月水量数据", "No monthly data"),
    "lead.reasons": ("列为线索的原因", "Why this lead"),
    "lead.no_reasons": ("无", "None"),
    "lead.alerts": ("监管预警", "Supervision alerts"),
    "lead.verdicts": ("历次核查结论", "Past inspections"),
    "lead.no_verdicts": ("尚无核查记录", "No inspection yet"),
    "lead.visited_on": ("核查日期", "Visited"),
    "lead.outcome": ("结论", "Outcome"),
    "lead.violation_type": ("违法类型", "Violation type"),
    "lead.note": ("备注", "Note"),
    "lead.by": ("核查人", "Officer"),
    "lead.form": ("登记核查结论", "Record the inspection"),
    "lead.submit": ("提交结论", "Record verdict"),
    "lead.choose": ("请选择", "Choose"),
    "lead.closed_note": ("该线索已结案。", "This lead is closed."),
    "lead.recorded": ("核查结论已登记，线索已结案。", "Verdict recorded; the lead is closed."),
    "lead.recorded_unreachable": ("已登记无法核查，线索仍在队列中，可再次前往核查。",
                                  "Recorded as unreachable; the lead stays in the queue to be tried again."),
    "lead.invalid": ("结论填写有误：{msg}", "The verdict is not valid: {msg}"),
    "lead.need_type": ("违法结论必须选择违法类型", "A violation needs a violation type"),
    "lead.type_only_violation": ("只有“存在违法”才能选择违法类型", "Only a violation takes a violation type"),
    "lead.future_date": ("核查日期不能晚于今天", "The visit date cannot be in the future"),
    "lead.assign": ("分派", "Assignment"),
    "lead.take": ("由我核查", "I'll take it"),
    "lead.assign_to": ("分派给", "Assign to"),
    "lead.assign_submit": ("分派", "Assign"),
    "lead.assign_choose": ("请选择一名本辖区的执法人员", "Choose an officer of this district"),
    "lead.assigned_to": ("当前负责人", "Assigned to"),
    "lead.assigned_ok": ("已分派。", "Assigned."),
    "lead.not_yours": ("该线索已分派给其他执法人员。", "This lead is assigned to another officer."),
    "lead.read_only": ("您的角色只能查看。", "Your role can only view."),
    "error.422.title": ("填写有误", "Invalid input"),
    "lead.risk_score": ("风险评分", "Risk score"),
    "lead.rank": ("全市排名", "City rank"),
    # chart
    "chart.supply": ("自来水供水量", "Public supply"),
    "chart.abstraction": ("计量取水量", "Metered abstraction"),
    "chart.discharge": ("排水量", "Discharge"),
    "chart.quota": ("许可水量/月", "Permit quota / month"),
    "chart.since": ("突变起始", "Shift since"),
    "chart.unit": ("m³/月", "m³/month"),
    "chart.verdicts": ("核查数", "Verdicts"),
    "chart.hit_rate": ("查实率", "Hit rate"),
    # dashboard
    "dash.title": ("全市总览", "City dashboard"),
    "dash.run": ("当前运行", "Live run"),
    "dash.as_of": ("数据期间", "Data period"),
    "dash.in_queue": ("队列中线索", "Leads in queue"),
    "dash.verdicts": ("已登记结论", "Verdicts recorded"),
    "dash.hit_rate": ("查实率", "Hit rate"),
    "dash.hit_rate_note": ("存在违法 ÷（存在违法 + 未发现违法），每条线索只计当前有效的结论",
                           "violations ÷ (violations + no violation), each lead's current verdict once"),
    "dash.alerts": ("预警", "Alerts"),
    "dash.outbox": ("短信发件箱", "SMS outbox"),
    "dash.by_district": ("各辖区线索与状态", "Leads by district and status"),
    "dash.workload": ("执法人员工作量", "Officer workload"),
    "dash.open_assigned": ("在办", "Open"),
    "dash.closed": ("已结案", "Closed"),
    "dash.violations": ("查实", "Violations"),
    "dash.hits_over_time": ("各月核查与查实率", "Verdicts and hit rate by month"),
    "dash.alerts_by_kind": ("预警（按类型与颜色）", "Alerts by kind and colour"),
    "dash.water_rights": ("水权交易匹配", "Water-rights matches"),
    "dash.rights_count": ("共 {n} 组", "{n} matches"),
    "dash.seller": ("富余方", "Seller"),
    "dash.buyer": ("短缺方", "Buyer"),
    "dash.surplus": ("富余 (m³)", "Surplus (m³)"),
    "dash.shortfall": ("短缺 (m³)", "Shortfall (m³)"),
    "dash.volume": ("可交易 (m³)", "Volume (m³)"),
    "dash.model": ("在用模型", "Model in service"),
    "dash.model_version": ("版本", "Version"),
    "dash.trained_at": ("训练时间", "Trained"),
    "dash.backtest": ("回测指标", "Backtest metrics"),
    "dash.models_differ": ("各市当前运行使用的模型不同，下表分列各市的模型；选择城市可只看该市。",
                           "The cities' live runs use different models: each city's is listed; choose a city to "
                           "see its own only."),
    "dash.no_model": ("尚未发布运行结果", "No run published yet"),
    "dash.recipient": ("接收方", "Recipient"),
    "dash.text": ("内容", "Text"),
    "dash.error": ("错误", "Error"),
    "dash.none": ("暂无数据", "No data yet"),
    "dash.total": ("合计", "Total"),
    "dash.month": ("月份", "Month"),
    "dash.count": ("数量", "Count"),
    "dash.metric": ("指标", "Metric"),
    "dash.value": ("数值", "Value"),
    # errors
    "error.403.title": ("无权访问", "Access denied"),
    "error.403.body": ("该线索不在您的辖区，或您的角色无权查看此页面。", "This lead is outside your district, or your role may not see this page."),
    "error.origin.body": ("此表单不是从本系统的页面提交的，已拒绝。请打开本系统的页面重新操作。",
                          "This form was not sent from this service's own pages, so it was refused. Open the "
                          "service's page and try again."),
    "error.404.title": ("未找到", "Not found"),
    "error.404.body": ("您要找的线索不存在。", "The lead you asked for does not exist."),
    "error.409.title": ("无法处理", "Conflict"),
    "error.back": ("返回首页", "Back to start"),
    # codes as the departments and the linker write them
    "src.groundwater": ("地下水", "Groundwater"),
    "src.surface": ("地表水", "Surface water"),
    "src.supply": ("供水", "Supply"),
    "src.discharge": ("排水", "Sewer"),
    "permit.valid": ("有效", "Valid"),
    "permit.expired": ("已过期", "Expired"),
    "permit.revoked": ("已吊销", "Revoked"),
    "permit.cancelled": ("已注销", "Cancelled"),
    "purpose.industrial": ("工业", "Industrial"),
    "purpose.domestic": ("生活", "Domestic"),
    "purpose.agriculture": ("农业", "Agriculture"),
    "purpose.services": ("服务业", "Services"),
    "purpose.dewatering": ("基坑降水", "Dewatering"),
    "method.uscc": ("信用代码一致", "Same credit code"),
    "method.name_exact": ("名称完全一致", "Exact name"),
    "method.name_fuzzy": ("名称近似", "Similar name"),
    "method.shared_park": ("园区共用", "Shared park account"),
    "method.none": ("未匹配", "Not linked"),
    "link.review": ("待复核", "to review"),
    "link.shared": ("共用", "shared"),
    "link.unlinked": ("未关联", "unlinked"),
    # backtest metrics (target.scorer.metric)
    "metric.precision_at": ("前{k}条查实率", "Precision in the top {k}"),
    "metric.recall_at": ("前{k}条召回率", "Recall in the top {k}"),
    "metric.labelled_at": ("前{k}条有核查结论的比例", "Share labelled in the top {k}"),
    "metric.lift_vs_naive_at": ("前{k}条相对简单规则的提升", "Lift over the naive rule, top {k}"),
    "metric.lift_vs_random_at": ("前{k}条相对随机抽查的提升", "Lift over random picks, top {k}"),
    "metric.average_precision": ("平均精确率", "Average precision"),
    "metric.steadiness_at_capacity": ("各期稳定性", "Steadiness across cut-offs"),
    "metric.objective": ("优化目标", "Objective"),
    "scorer.model": ("模型", "model"),
    "scorer.naive": ("简单规则", "naive rule"),
    "scorer.random": ("随机", "random"),
    "target.inspected": ("核查结论", "inspections"),
    "target.violation": ("违法", "violations"),
    "target.truth": ("评估真值", "evaluation truth"),
    "common.yes": ("是", "yes"),
    "common.no": ("否", "no"),
    "common.none": ("—", "—"),
}


def normalise_lang(value: str | None) -> str | None:
    """``zh``/``en`` from a query value or cookie (``zh-CN``, ``EN`` accepted); None when not a language."""
    if not value:
        return None
    value = value.strip().lower()[:2]
    return value if value in LANGS else None


MISSING: set[str] = set()  # keys asked for that have no entry (the browser tests require none)


def t(key: str, lang: str = DEFAULT_LANG, **values) -> str:
    if key not in STRINGS:  # an unknown code (a new alert kind, say) shows as itself, and is remembered
        MISSING.add(key)
        return key.split(".", 1)[-1]
    zh, en = STRINGS[key]
    text = en if lang == "en" and en else zh
    return text.format(**values) if values else text


def translator(lang: str):
    """``t`` bound to one language, for templates."""

    def _t(key: str, **values) -> str:
        return t(key, lang, **values)

    return _t


def code_label(prefix: str, value: str | None, lang: str = DEFAULT_LANG) -> str:
    """A department or linker code in words when we know it, else the code itself."""
    if value is None or value == "":
        return "—"
    key = f"{prefix}.{value}"
    return t(key, lang) if key in STRINGS else str(value)


def metric_label(key: str, lang: str = DEFAULT_LANG) -> str:
    """``target.scorer.metric`` of the backtest headline in words, e.g. 前100条查实率（模型 · 违法）."""
    parts = key.split(".")
    if len(parts) != 3:
        return key
    target, scorer, metric = parts
    words = None
    for stem in ("precision_at", "recall_at", "labelled_at", "lift_vs_naive_at", "lift_vs_random_at"):
        if metric.startswith(stem + "_"):
            k = metric[len(stem) + 1:].replace("pct", "%")
            words = t(f"metric.{stem}", lang, k=k)
            break
    if words is None:
        words = t(f"metric.{metric}", lang) if f"metric.{metric}" in STRINGS else metric
    who = " · ".join(code_label(p, v, lang) for p, v in (("scorer", scorer), ("target", target)))
    return f"{words}（{who}）" if lang == "zh" else f"{words} ({who})"


from serving.i18n_modules import MODULE_STRINGS  # noqa: E402 - the module pages' strings

STRINGS.update(MODULE_STRINGS)


def data_period(as_of, lang: str = DEFAULT_LANG) -> str:
    """A run's as-of stated one way everywhere (console and run report): the last month the data includes,
    and the as-of day before which every number was computed."""
    from datetime import date

    if not as_of:
        return "—"
    day = as_of if isinstance(as_of, date) else date.fromisoformat(str(as_of)[:10])
    year, month = (day.year, day.month - 1) if day.month > 1 else (day.year - 1, 12)
    if lang == "en":
        return f"Data up to {date(year, month, 1):%B %Y} (as-of {day.isoformat()}: only data before this day)"
    return f"数据截至{year}年{month}月（含该月）；评估基准日 {day.isoformat()}"

STRINGS["dash.as_of_day"] = ("评估基准日", "As-of day")


def local_time(value, zone: str = DISPLAY_TIMEZONE) -> str:
    """A stored time as the bureau reads it: the store keeps UTC (it returns aware datetimes; a naive one, or an
    ISO string such as a model's ``trained_at``, is read as UTC), the console shows ``zone``'s wall clock."""
    from datetime import datetime, timezone
    from zoneinfo import ZoneInfo

    if value is None or value == "":
        return "—"
    at = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    return at.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")
