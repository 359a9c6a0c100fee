"""Console strings of the module pages (alerts, cases, the SMS outbox, water rights, exports, the officer's day,
the dashboard's panels) in Chinese and English; ``serving.i18n`` merges them into its ``STRINGS``."""

from __future__ import annotations

MODULE_STRINGS: dict[str, tuple[str, str]] = {}

# the console's module pages: alerts, cases, the SMS outbox, water rights, exports
MODULE_STRINGS.update({
    "nav.alerts": ("监管预警", "Alerts"),
    "nav.cases": ("案件", "Cases"),
    "nav.outbox": ("短信", "SMS"),
    "nav.water_rights": ("水权交易", "Water rights"),
    "list.export": ("导出", "Export"),
    "list.empty": ("没有符合条件的记录", "Nothing matches"),
    "alerts.kind": ("预警类型", "Alert kind"),
    "alerts.level": ("预警级别", "Level"),
    "outbox.id": ("消息编号", "Message"),
    "outbox.sending": ("发送中", "Sending"),
    "outbox.retrying": ("重试中", "Retrying"),
    "outbox.delivered": ("已送达", "Delivered"),
    "outbox.undeliverable": ("无法送达", "Undeliverable"),
    "outbox.attempts": ("尝试次数", "Attempts"),
    "outbox.timing": ("时间", "When"),
    "outbox.last_attempt": ("上次尝试", "Last attempt"),
    "outbox.next_attempt": ("下次尝试", "Next attempt"),
    "outbox.sent_at": ("发出", "Sent"),
    "outbox.delivered_at": ("送达", "Delivered"),
    "outbox.resend": ("重新发送", "Resend"),
    "outbox.resends": ("已重发 {n} 次", "resent {n}×"),
    "outbox.resend_done": ("已重新排入发送队列。", "Queued to be sent again."),
    "outbox.send_now": ("立即发送到期短信", "Send due messages now"),
    "outbox.send_hint": ("失败的短信会按退避间隔自动重试；同一条短信不会重复发出。",
                         "Failed attempts are retried with growing waits; no message is sent twice."),
    "outbox.send_done": ("本次发出 {sent} 条，{retrying} 条待重试，{failed} 条失败。",
                         "Sent {sent}; {retrying} to retry; {failed} failed."),
    "outbox.sender_file": ("发送方式：写入本地文件", "Sender: local file"),
    "outbox.sender_http": ("发送方式：短信网关", "Sender: SMS gateway"),
    "outbox.signature": ("短信签名", "Signature"),
    "outbox.search": ("接收方、内容或信用代码", "Recipient, text or code"),
    "outbox.count": ("共 {n} 条短信", "{n} messages"),
})

MODULE_STRINGS.update({
    "wr.intro": ("同一辖区、同一水源中，年度许可水量长期富余的单位（富余方）与计划用水不足的单位（短缺方）的可交易水量。",
                 "Entities with quota they have long left unused (sellers) matched with entities short of quota "
                 "(buyers), in the same district and water source, with the volume they could trade."),
    "wr.matches": ("匹配组", "Matches"),
    "wr.sellers": ("富余方", "Sellers"),
    "wr.buyers": ("短缺方", "Buyers"),
    "wr.volume_total": ("可交易水量合计 (m³)", "Tradable volume (m³)"),
    "wr.view": ("查看方式", "View"),
    "wr.search": ("单位名称或信用代码", "Name or code"),
    "wr.seller_uscc": ("富余方信用代码", "Seller code"),
    "wr.buyer_uscc": ("短缺方信用代码", "Buyer code"),
    "wr.matched": ("已匹配水量 (m³)", "Matched (m³)"),
    "wr.partners_sellers": ("匹配的短缺方", "Buyers matched"),
    "wr.partners_buyers": ("匹配的富余方", "Sellers matched"),
    "wr.count_matches": ("共 {n} 组匹配", "{n} matches"),
    "wr.count_sellers": ("共 {n} 个富余方", "{n} sellers"),
    "wr.count_buyers": ("共 {n} 个短缺方", "{n} buyers"),
})

MODULE_STRINGS.update({
    "alerts.id": ("预警编号", "Alert"),
    "alerts.period": ("期间", "Period"),
    "alerts.value": ("数值", "Value"),
    "alerts.threshold": ("阈值", "threshold"),
    "alerts.unit": ("单位", "Unit"),
    "alerts.search": ("单位名称、信用代码或许可证号", "Name, code or permit"),
    "alerts.count": ("共 {n} 条预警", "{n} alerts"),
    "alerts.ytd": ("本年累计用水占年度限额", "Year-to-date use, % of the annual limit"),
    "alerts.ytd_now": ("截至目前", "So far"),
    "alerts.projection": ("按当前进度推算至年底", "At this pace by December"),
    "alerts.jan": ("1月", "Jan"),
    "alerts.dec": ("12月", "Dec"),
    "unit.%": ("%", "%"),
    "unit.m³": ("m³", "m³"),
    "unit.m3": ("m³", "m³"),
    "unit.天": ("天", "days"),
    "unit.share": ("", ""),
})

MODULE_STRINGS.update({
    "queue.industry": ("行业", "Industry"),
    "queue.any_industry": ("全部行业", "Any industry"),
    "queue.alerts": ("预警", "Alerts"),
    "queue.sort": ("排序", "Sort by"),
    "queue.mine": ("只看我的", "Mine only"),
    "queue.search_hint": ("名称、信用代码、地址、行业或原因", "Name, code, address, industry or reason"),
    "sort.queue": ("队列顺序", "Queue order"),
    "sort.rank": ("全市排名", "City rank"),
    "sort.risk": ("风险评分", "Risk score"),
    "sort.name": ("单位名称", "Name"),
    "sort.address": ("地址", "Address"),
    "sort.industry": ("行业", "Industry"),
    "sort.status": ("状态", "Status"),
    "sort.updated": ("最近更新", "Last updated"),
    "day.open": ("今日核查单", "Day sheet"),
    "day.title": ("现场核查工作单", "Field day sheet"),
    "day.group": ("园区或街道", "Park or street"),
    "day.print": ("打印", "Print"),
    "day.done": ("已核查", "Done"),
    "day.count": ("{n} 家", "{n} leads"),
    "day.note": ("共 {n} 条线索（最多 {limit} 条），按工业园区或街道分组，便于按路线安排。",
                 "{n} leads (at most {limit}), grouped by industrial park or street for one route."),
    "day.empty": ("没有待核查的线索。", "No open leads to visit."),
})
MODULE_STRINGS["lead.industry"] = ("行业", "Industry")
MODULE_STRINGS["queue.filter_text"] = ("搜索", "Search")

MODULE_STRINGS.update({
    "dash.open_leads": ("待办线索", "Open leads"),
    "dash.in_queue_short": ("在队列中", "in the queue"),
    "dash.backlog_age": ("积压线索的等待时间", "How long open leads have waited"),
    "dash.no_backlog": ("没有积压的线索", "No open leads"),
    "dash.oldest_days": ("最久等待（天）", "Oldest (days)"),
    "dash.drill_hint": ("点击色块查看对应线索列表。", "Click a bar to open the leads it counts."),
    "dash.last_30": ("近30天结论", "Verdicts, last 30 days"),
    "dash.workload_chart": ("图示", "Chart"),
    "dash.no_officers": ("尚无执法人员账号", "No officer accounts yet"),
    "dash.runs": ("历次运行", "Runs"),
    "dash.runs_note": ("每次运行上线期间登记的核查结论与查实率。", "Verdicts recorded while each run was live, and their hit rate."),
    "dash.entities": ("评分单位数", "Entities scored"),
    "dash.published": ("发布时间", "Published"),
    "age.d7": ("7天内", "≤ 7 days"),
    "age.d30": ("8–30天", "8–30 days"),
    "age.d90": ("31–90天", "31–90 days"),
    "age.older": ("90天以上", "> 90 days"),
    "model.not_measurable": (
        "无可衡量的数值：回测各期前列线索中平均只有 {n} 家有核查结论（少于 {min} 家），查实率无从衡量，故不显示。",
        "No measured number: on average only {n} of the top-ranked entities had an inspection in the backtest "
        "(fewer than {min}), so precision there measures nothing and is not shown."),
    "model.why_no_backtest": ("该模型没有回测指标（例如从模型库导出的冠军模型）。",
                              "This model carries no backtest metrics (e.g. a champion exported from the registry)."),
})
MODULE_STRINGS["metric.labelled_at"] = ("前{k}条中有核查结论的单位数（各期平均）", "Entities with an inspection in the top {k} (mean per cut-off)")

MODULE_STRINGS.update({
    "lead.actions": ("操作", "Actions"),
    "lead.start": ("开始现场核查", "Start the inspection"),
    "lead.start_hint": ("到达现场时点击，线索状态变为“核查中”。", "Press on arrival: the lead becomes in progress."),
    "lead.started": ("已开始核查。", "Inspection started."),
    "lead.evidence": ("现场证据", "Evidence"),
    "lead.no_evidence": ("尚无照片或文件", "No photo or document yet"),
    "lead.evidence_file": ("照片或 PDF（JPEG、PNG、WebP、PDF，不超过 {mb} MB）", "Photo or PDF (JPEG, PNG, WebP, PDF; up to {mb} MB)"),
    "lead.evidence_note": ("说明", "Caption"),
    "lead.evidence_upload": ("上传", "Upload"),
    "lead.evidence_ok": ("证据已上传。", "Evidence uploaded."),
    "history.department": ("部门核查记录", "department record"),
    "history.verdict": ("平台核查结论", "verdict"),
    "history.superseded": ("（已被复核更正）", "(superseded after a review)"),
    "history.earlier_lead": ("此前的线索", "earlier lead"),
    "dept_outcome.violation": ("存在违法", "Violation"),
    "dept_outcome.no_violation": ("未发现违法", "No violation"),
    "dept_outcome.unreachable": ("无法核查", "Unreachable"),
})
MODULE_STRINGS["lead.verdicts"] = ("历次核查", "Inspection history")

MODULE_STRINGS.update({
    "lead.correct": ("更正结论或重新核查（督查负责人）", "Correct the verdict or reopen (supervisor)"),
    "lead.correct_hint": ("更正会保留原结论并记入审计日志；重新打开会让原结论失效，线索回到原执法人员。",
                          "A correction keeps the old values in the audit log; reopening supersedes the verdict and "
                          "sends the lead back to its officer."),
    "lead.reason": ("理由（必填）", "Reason (required)"),
    "lead.amend": ("保存更正", "Save the correction"),
    "lead.reopen": ("重新打开，退回现场核查", "Reopen for another visit"),
    "lead.amended_ok": ("结论已更正。", "Verdict corrected."),
    "lead.reopened_ok": ("线索已重新打开。", "Lead reopened."),
})


def _case_labels() -> dict[str, tuple[str, str]]:
    """The case track's kinds and actions, in the words the case module gives them."""
    from models.cases import ACTION_CN, ACTION_EN, KIND_CN, KIND_EN

    return {**{f"casekind.{k}": (KIND_CN[k], KIND_EN[k]) for k in KIND_CN},
            **{f"casetab.{k}": (KIND_CN[k], KIND_EN[k]) for k in KIND_CN},
            **{f"action.{k}": (ACTION_CN[k], ACTION_EN[k]) for k in ACTION_CN}}


MODULE_STRINGS.update(_case_labels())
MODULE_STRINGS.update({
    "casetab.quota": ("用水总量三色预警", "Quota use: three colours"),
    "casetab.renewal": ("许可到期提醒", "Permit renewals"),
    "casetab_note.quota": ("本年累计用水达年度许可或计划水量的 80%（黄）、90%（橙）、100%（红），及按进度将超量的单位；曲线为本年累计进度。",
                           "Year-to-date use at 80 % (yellow), 90 % (orange) or 100 % (red) of the annual permit or "
                           "plan, and those on course to exceed it; each curve is the year so far."),
    "casetab_note.renewal": ("取水许可证 90 天、60 天内到期的单位，提醒其按期申请延续。",
                             "Permits expiring within 90 or 60 days: remind the holder to apply for renewal."),
    "casetab_note.expired_permit_in_use": ("许可证过期、吊销或注销后仍计量取水：立案查处。",
                                           "Metered abstraction after a permit expired or was withdrawn: open an "
                                           "enforcement file."),
    "casetab_note.unpermitted_use": ("申报或计量的取水在该期间没有对应水源的有效许可：立案查处。",
                                     "Declared or metered abstraction with no valid permit for that source: open an "
                                     "enforcement file."),
    "casetab_note.quota_red": ("超年度许可或计划水量（红色）：下达通知书。",
                               "Over the annual permit or plan (red): send a notice."),
    "casetab_note.tax_verification": ("按季度比对申报、计量与许可水量，给出核定水量，函告税务部门。",
                                      "Declared, metered and permitted volumes by quarter, with the verified quantity "
                                      "for the tax office."),
    "casetab_note.source_prevention": ("新批或新开工项目未办理取水手续：指导办理许可、计划用水和节水“三同时”。",
                                       "New approvals and construction starts without water procedures: guide them "
                                       "through permit, water-use plan and water-saving design."),
    "case.open": ("待处理", "Open"),
    "case.in_progress": ("办理中", "In progress"),
    "case.closed": ("已办结", "Closed"),
    "case.dismissed": ("已撤销", "Dismissed"),
    "casemove.in_progress": ("开始办理", "Start"),
    "casemove.closed": ("办结", "Close"),
    "casemove.dismissed": ("撤销", "Dismiss"),
    "casemove.open": ("重新打开", "Reopen"),
    "cases.id": ("案件编号", "Case"),
    "cases.kind": ("案件类型", "Case kind"),
    "cases.project": ("项目", "Project"),
    "cases.action": ("应办事项", "Action needed"),
    "cases.evidence": ("事实与数字", "Evidence"),
    "cases.volume": ("涉及水量 (m³)", "Volume at stake (m³)"),
    "cases.tax": ("涉及税款 (元)", "Tax at stake (¥)"),
    "cases.verified": ("核定水量 (m³)", "Verified quantity (m³)"),
    "cases.assignee": ("经办人", "Handled by"),
    "cases.count": ("共 {n} 条", "Items: {n}"),
    "cases.has_case": ("已立案", "Case opened"),
    "cases.moved": ("案件状态已改为“{status}”。", "Case moved to “{status}”."),
    "cases.note": ("说明（撤销须填写理由）", "Note (a dismissal needs a reason)"),
    "cases.note_required": ("撤销案件须填写理由，案件状态未改变。", "A dismissal needs a reason: the case was not moved."),
})

# session 10: a case a colleague holds; an export cut at its row limit, said on the page that offers it
MODULE_STRINGS.update({
    "cases.held_by": ("由 {who} 办理：只有本人或督查负责人可以更改", "{who} is handling it: only they or a supervisor may move it"),
    "list.export_cut": ("导出文件只含前 {n} 条（共 {total} 条）：缩小筛选范围可导出其余记录。",
                        "The export holds the first {n} of {total} rows: narrow the filters to export the rest."),
})

# session 11: a supervisor gives a case to an officer of its district, or takes it back; its holder hands it back
MODULE_STRINGS.update({
    "cases.assign_to": ("分派给", "Assign to"),
    "cases.assign_submit": ("分派", "Assign"),
    "cases.assign_choose": ("请选择一名本辖区的执法人员", "Choose an officer of the case's district"),
    "cases.release": ("收回", "Release"),
    "cases.hand_back": ("交回", "Hand back"),
    "cases.no_officers": ("本辖区暂无可分派的执法人员", "No active officer in this district to assign"),
    "cases.assigned_ok": ("案件已分派。", "Case assigned."),
    "cases.released_ok": ("案件已收回，当前无人办理。", "Case released: nobody holds it now."),
})
