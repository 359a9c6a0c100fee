"""Input the service must refuse or neutralise rather than store, ignore or pass on: a NUL byte in a console
form (never a 500, never a file without its row, on SQLite and PostgreSQL), feature names the champion does not
know or values of the wrong type in /scores/predict, and text that a spreadsheet would run as a formula in the
console's CSV and XLSX exports."""

from __future__ import annotations

import csv
import io
import zipfile

import numpy as np
import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import func, select

from console_forms import post_login
from serving.errors import Invalid
from serving.store import AuditLog, Evidence
from test_security import PASSWORD, store  # noqa: F401 - the fixture is used by the tests
from test_store import empty_store_url  # noqa: F401 - the fixture is used by ``store``

JPEG = b"\xff\xd8\xff\xe0" + b"0" * 100
SQLITE_ONLY = pytest.mark.parametrize("empty_store_url", ["sqlite"], indirect=True)


def _console(store, username: str) -> TestClient:
    client = TestClient(store.app, raise_server_exceptions=False)  # a 500 is an answer to look at
    assert post_login(client, username, PASSWORD, follow_redirects=False).status_code == 303
    return client


def _csrf(html: str) -> str:
    return html.split('name="csrf" value="')[1].split('"')[0]


def test_a_nul_in_an_evidence_note_is_a_422_and_no_file_outlives_a_failed_insert(store, monkeypatch):
    from serving import evidence

    lead = store.leads("德城区")[0]
    officer = _console(store, "off_dc")
    token = _csrf(officer.get(f"/leads/{lead}").text)
    folder = store.tmp / "evidence" / str(lead)
    r = officer.post(f"/leads/{lead}/evidence", data={"csrf": token, "note": "现场照片\x00坏"},
                     files={"file": ("a.jpg", JPEG, "image/jpeg")}, follow_redirects=False)
    assert r.status_code == 422
    moved = officer.post(f"/leads/{lead}/start", data={"csrf": "x\x00"}, follow_redirects=False)
    assert moved.status_code == 422  # every console form field is validated text, the CSRF token too
    assert not folder.exists() or not any(folder.iterdir())

    # the service itself refuses a NUL note (a caller other than the console), before any file is written
    with store.sessions() as s, pytest.raises(Invalid):
        evidence.add_evidence(s, store.tmp, lead, _principal(store, "off_dc"), "a.jpg", JPEG, "a\x00b",
                              evidence.EvidenceSettings())
    # a database that refuses the row (here: the commit fails) leaves no file behind
    monkeypatch.setattr("sqlalchemy.orm.Session.commit", _fail)
    failed = officer.post(f"/leads/{lead}/evidence", data={"csrf": token, "note": "ok"},
                          files={"file": ("a.jpg", JPEG, "image/jpeg")}, follow_redirects=False)
    assert failed.status_code == 500
    monkeypatch.undo()
    assert not folder.exists() or not any(folder.iterdir())
    ok = officer.post(f"/leads/{lead}/evidence", data={"csrf": token, "note": "现场照片"},
                      files={"file": ("a.jpg", JPEG, "image/jpeg")}, follow_redirects=False)
    assert ok.status_code == 303
    with store.sessions() as s:
        rows = list(s.scalars(select(Evidence)))
        assert [(e.lead_id, e.note) for e in rows] == [(lead, "现场照片")]
        assert s.scalar(select(func.count()).where(AuditLog.action == "evidence_upload")) == 1
    assert [p.name for p in folder.iterdir()] == [rows[0].stored_as.rsplit("/", 1)[1]]


def _fail(self):
    raise RuntimeError("the database refused the commit")


def _principal(store, username: str):
    from serving.identity import Principal
    from serving.store import User

    with store.sessions() as s:
        user = s.scalars(select(User).where(User.username == username)).one()
        return Principal(user.username, user.role, user.district, city=user.city, user_id=user.id)


@SQLITE_ONLY
def test_predict_refuses_unknown_features_and_values_of_the_wrong_type(store):
    h, url = store.h("ana"), "/api/v1/scores/predict"
    good = store.client.post(url, headers=h, json={"rows": [{"id": "r1", "features": {"balance_ratio_12m": 2.4}}]})
    assert good.status_code == 200
    missing = store.client.post(url, headers=h, json={"rows": [{"id": "r1", "features": {}}]})
    assert missing.status_code == 200  # a feature left out is unknown (NaN), as documented
    typo = store.client.post(url, headers=h, json={"rows": [
        {"id": "r1", "features": {"balance_ratio_12m": 2.4}},
        {"id": "r2", "features": {"no_such_feature": 2.4, "balance_ratio_12": 1.0}}]})
    assert typo.status_code == 422
    assert "no_such_feature" in typo.text and "balance_ratio_12" in typo.text and "'r2'" in typo.text
    for value in (True, "2.4", [1.0], {"x": 1}):
        wrong = store.client.post(url, headers=h, json={"rows": [{"id": "r1", "features": {"supply_m3_12m": value}}]})
        assert wrong.status_code == 422, (value, wrong.text)
        assert "supply_m3_12m" in wrong.text

    # text features stay text: the bundle takes an industry code as text and refuses a number for it
    from training.artifacts import FeatureTypeError, ModelBundle, UnknownFeatureError

    bundle = ModelBundle(_Half(), ["balance_ratio_12m", "industry_code"])
    assert bundle.predict_records([{"balance_ratio_12m": 2.4, "industry_code": "C2614"}, {}]).tolist() == [0.5, 0.5]
    with pytest.raises(FeatureTypeError, match="industry_code"):
        bundle.predict_records([{"industry_code": 2614.0}])
    with pytest.raises(UnknownFeatureError) as unknown:
        bundle.predict_records([{}, {"industry": "C2614"}])
    assert (unknown.value.features, unknown.value.row) == (["industry"], 1)


class _Half:
    """A stand-in model: 0.5 for every row of the matrix it is given."""

    def predict_proba(self, X):
        return np.full((len(X), 2), 0.5)


@SQLITE_ONLY
def test_exports_never_carry_a_formula(store):
    from serving.console.export import export_response

    attack = '=HYPERLINK("http://evil.example/x","点击")'
    assert store.client.post("/api/v1/outbox/M1/failed", headers=store.h("sup"),
                             json={"error": attack}).status_code == 200
    sup = _console(store, "sup")
    rows = list(csv.reader(io.StringIO(sup.get("/outbox?format=csv").content.decode("utf-8-sig"))))
    assert "'" + attack in [cell for row in rows for cell in row]
    xlsx = sup.get("/outbox?format=xlsx").content
    with zipfile.ZipFile(io.BytesIO(xlsx)) as z:
        sheets = [z.read(n).decode() for n in z.namelist() if n.startswith("xl/worksheets/")]
    assert sheets and not any("<f>" in s or "<f " in s for s in sheets)
    assert any(attack.replace('"', "&quot;") in s or attack in s for s in sheets)

    columns = [(k, k) for k in ("text", "number")]
    items = [{"text": lead, "number": n} for lead, n in
             (("=1+1", -3.5), ("+86138", 7), ("-2", -1), ("@SUM(A1)", 0.25), ("\tx", None), ("\r=x", 2),
              ("#N/A", 4), ("正常-1", 3))]
    got = list(csv.reader(io.StringIO(export_response("csv", "t", columns, items).body.decode("utf-8-sig"))))
    assert [r[0] for r in got[1:]] == ["'=1+1", "'+86138", "'-2", "'@SUM(A1)", "'\tx", "'\r=x", "#N/A", "正常-1"]
    assert [r[1] for r in got[1:]] == ["-3.5", "7", "-1", "0.25", "", "2", "4", "3"]
    sheet = load_workbook(io.BytesIO(export_response("xlsx", "t", columns, items).body)).active
    cells = [row for row in sheet.iter_rows(min_row=2)]
    assert all(row[0].data_type == "s" for row in cells)  # text, never a formula (nor an error code)
    # the exact text, marked as text (XML reads a carriage return back as a line feed)
    assert [row[0].value for row in cells] == [i["text"].replace("\r", "\n") for i in items]
    assert [bool(row[0].quotePrefix) for row in cells] == [True] * 6 + [False] * 2
    assert [row[1].value for row in cells] == [-3.5, 7, -1, 0.25, None, 2, 4, 3]  # numbers stay numbers
    assert all(row[1].data_type == "n" for row in cells)
    control = export_response("xlsx", "t", columns, [{"text": "网关\x01错误", "number": 1}])  # XML cannot hold it
    assert load_workbook(io.BytesIO(control.body)).active["A2"].value == "网关\ufffd错误"
