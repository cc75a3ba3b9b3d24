"""A bill as a channel template's data: each keyword shows the fact the operator mapped it to, fitted to the
keyword's rules, which are checked here by the sandbox's own (independent) implementation of WeChat's and
Alipay's rules."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.domain.messaging import (
    BillFacts,
    bill_page,
    default_fields,
    fields_problem,
    fit,
    page_problem,
    template_data,
)
from mini_program_mock.messages.templates import alipay_data_problem, wechat_data_problem

WECHAT_BILL = {"template_id": "t", "purpose": "bill_created", "fields": ["thing1", "amount2", "time3", "thing4"]}
ALIPAY_BILL = {"template_id": "a", "purpose": "bill_created",
               "fields": ["keyword1", "keyword2", "keyword3", "keyword4"]}
# 02:06 UTC is 10:06 in Shanghai.
AT = datetime(2024, 7, 9, 2, 6, tzinfo=UTC)


def _facts(title: str = "血常规", amount_fen: int = 4500, clinic: str = "演示诊所 Demo Clinic") -> BillFacts:
    return BillFacts("B0001", "D0000001", "lab", title, amount_fen, clinic, AT)


def test_a_bill_fills_the_wechat_bill_template_as_wechat_accepts_it():
    data = template_data(default_fields("bill_created", WECHAT_BILL["fields"]), _facts(), "wechat")
    assert data == {"thing1": {"value": "血常规"}, "amount2": {"value": "45.00"},
                    "time3": {"value": "2024-07-09 10:06"}, "thing4": {"value": "演示诊所 Demo Clinic"}}
    assert wechat_data_problem(WECHAT_BILL, data) is None


def test_a_long_title_is_cut_to_what_a_thing_keyword_holds():
    title = "这是一个超过二十个字符的非常非常长的缴费项目名称"
    data = template_data({"thing1": "title", "amount2": "amount", "time3": "time", "thing4": "clinic"},
                         _facts(title=title, clinic="口腔医院" * 8), "wechat")
    assert len(data["thing1"]["value"]) == 20 and data["thing1"]["value"].endswith("…")
    assert data["thing1"]["value"].startswith(title[:19])
    assert wechat_data_problem(WECHAT_BILL, data) is None


def test_amounts_are_exact_yuan_whatever_the_fen():
    for fen, shown in ((1, "0.01"), (100, "1.00"), (123456, "1234.56")):
        data = template_data({"amount2": "amount"}, _facts(amount_fen=fen), "wechat")
        assert data["amount2"]["value"] == shown
    assert template_data({"keyword2": "amount"}, _facts(amount_fen=2500), "alipay")["keyword2"]["value"] == "25.00元"


def test_the_same_bill_fills_the_alipay_template_within_its_limits():
    data = template_data(default_fields("bill_created", ALIPAY_BILL["fields"]), _facts(title="检" * 80), "alipay")
    assert len(data["keyword1"]["value"]) == 50 and data["keyword1"]["value"].endswith("…")
    assert data["keyword2"]["value"] == "45.00元" and data["keyword3"]["value"] == "2024-07-09 10:06"
    assert alipay_data_problem(ALIPAY_BILL, data) is None


def test_ascii_only_keywords_are_cut_without_an_ellipsis():
    assert fit("D" * 40, "character_string1", "wechat") == "D" * 32
    assert fit("  two\nlines  ", "thing1", "wechat") == "two lines"


@pytest.mark.parametrize(("fields", "problem"), [
    ({}, "1 to 10"),
    ({"thing1": "patient_phone"}, "not 'patient_phone'"),
    ({"Thing 1": "title"}, "not a template keyword"),
    ({"thing1": "order_no"}, "not 'order_no'"),
    ("thing1", "1 to 10"),
])
def test_a_mapping_to_a_fact_a_bill_does_not_have_is_refused(fields, problem):
    assert problem in fields_problem("bill_created", fields)


def test_a_payment_template_may_show_the_order_number():
    assert fields_problem("payment_succeeded", {"character_string1": "order_no", "amount2": "amount"}) is None


def test_pages_are_paths_and_the_message_opens_the_card():
    assert page_problem("pages/bills/index") is None
    assert page_problem("pages/bills/index?x=1") and page_problem("https://evil.example/x") and page_problem("")
    assert bill_page("pages/bills/index", "D0000001") == "pages/bills/index?card_no=D0000001"
