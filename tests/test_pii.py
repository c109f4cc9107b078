"""Personal-data detection as a user sees it: validators, field names in three languages, categories
and masked examples per service and collection, traps that must stay quiet, no raw value in any output."""

from __future__ import annotations

import random
import re
from datetime import date, timedelta
from typing import Any

import pytest
from faker import Faker
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leaksonar.assess.lexicon import name_hint
from leaksonar.assess.masks import mask
from leaksonar.assess.pii import detect
from leaksonar.assess.validators import (
    classify,
    is_birth_date,
    is_cn_ric,
    is_email,
    is_gps_pair,
    is_iban,
    is_ip,
    is_national_id,
    is_payment_card,
    is_phone,
    is_us_ssn,
)
from leaksonar.lab.data import national_id
from leaksonar.model import PII_CATEGORIES, Sample

RIC = "11010519491231002X"
"""The GB 11643 example: Chaoyang district, Beijing, born 1949-12-31."""


def _ids(n: int, seed: int = 1) -> list[str]:
    rnd = random.Random(seed)
    return [
        national_id(rnd, date(1940, 1, 1) + timedelta(days=rnd.randrange(25000)), i % 2 == 0)
        for i in range(n)
    ]


# --- validators ----------------------------------------------------------------------------------------


def test_resident_ids_need_check_digit_birth_date_and_area() -> None:
    assert is_cn_ric(RIC)
    assert all(is_cn_ric(i) for i in _ids(50))
    assert not is_cn_ric(RIC[:-1] + "1")  # check digit
    assert not is_cn_ric("990105194912310021")  # no such area
    future = "110105" + f"{date.today().year + 1}0101" + "001"
    assert not is_cn_ric(future + "0")
    assert not is_cn_ric("110105" + "18990101" + "0010")


def test_other_national_ids() -> None:
    assert is_us_ssn("309-54-8311")
    assert not is_us_ssn("078-05-1120")  # the Woolworth wallet card
    assert not any(is_us_ssn(s) for s in ("000-12-3456", "666-12-3456", "912-12-3456"))
    assert is_national_id("12345678Z")  # Spanish DNI
    assert not is_national_id("12345678A")


def test_cards_need_luhn_and_an_issuer_prefix() -> None:
    assert is_payment_card("4111 1111 1111 1111")
    assert is_payment_card("5500-0000-0000-0004")
    assert not is_payment_card("4111111111111112")  # Luhn
    assert not is_payment_card("1700000000126")  # Luhn-valid, but no issuer starts with 17
    assert is_iban("GB82 WEST 1234 5698 7654 32")
    assert not is_iban("GB82 WEST 1234 5698 7654 33")


def test_phones() -> None:
    assert is_phone("13812345678")
    assert is_phone("+86 138 1234 5678")
    assert is_phone("(650) 253-0000")
    assert is_phone("+1 650-253-0000")
    assert is_phone("010-62345678")
    assert not is_phone("6502530000")  # bare 10 digits prove nothing alone
    assert is_phone("6502530000", lenient=True)  # ... but agree with a column named "tel"
    for trap in ("1700000000123", "10012345678", "12345678901", "2023-05-01", "192.168.10.20"):
        assert not is_phone(trap), trap


def test_emails_ips_coordinates_dates() -> None:
    assert is_email("john.doe@example.com") and not is_email("icon@2x.png") and not is_email("me@localhost")
    assert is_ip("203.0.113.7") and is_ip("2001:db8::1")
    assert not is_ip("1.2.0.3") and is_ip("1.2.0.3", lenient=True)  # alone, it reads as a version
    assert not is_ip("999.1.1.1") and not is_ip("12:30:45")
    assert is_gps_pair("31.230416,121.473701") and is_gps_pair("(40.712800, -74.006000)")
    assert not is_gps_pair("31.2,121.4") and not is_gps_pair("95.123456,190.123456")
    assert is_birth_date("1985-03-07") and is_birth_date("1985年3月7日") and is_birth_date("03/07/1985")
    assert (
        not is_birth_date("2999-01-01") and not is_birth_date("1899-12-31") and not is_birth_date("19850230")
    )


@pytest.mark.parametrize(
    "value",
    [
        "1700000000123",  # ms timestamp
        "1700000000",
        "20231205001",  # 11 digits, not a phone
        "5f4dcc3b5aa765d61d8327deb882cf99",  # md5
        "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12",  # sha1
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",  # sha256
        "4919f01c-3578-486b-8847-94d952381699",  # uuid
        "2.1.0.3",
        "10.4.12",  # versions
        "1299.00",
        "SO2025000007",
        RIC[:-1] + "1",
    ],
)
def test_values_that_prove_nothing(value: str) -> None:
    assert classify(value) is None


def test_masks() -> None:
    assert mask("national_id", "31010119900101123X") == "3101**********123X"
    assert mask("national_id", "309-54-8311") == "***-**-8311"
    assert mask("phone", "13812345678") == "138****5678"
    assert mask("email", "john@example.com") == "j***@example.com"
    assert mask("payment_card", "4111111111111111") == "**** **** **** 1111"
    assert mask("ip_address", "203.0.113.7") == "203.0.*.*"
    assert mask("birth_date", "1985-03-07") == "1985-**-**"
    assert mask("name", "张三丰") == "张**"


def _values(category: str, fake: Faker, en: Faker, rnd: random.Random) -> Any:
    makers = {
        "name": lambda: rnd.choice((fake.name(), en.name())),
        "national_id": lambda: rnd.choice((_ids(1, rnd.randrange(10**6))[0], en.ssn())),
        "phone": lambda: rnd.choice((fake.phone_number(), en.phone_number())),
        "email": fake.email,
        "address": lambda: rnd.choice((fake.address(), en.address())),
        "birth_date": lambda: en.date_of_birth().isoformat(),
        "age": lambda: str(rnd.randrange(10, 100)),
        "birth_place": lambda: fake.province() + fake.city(),
        "location": lambda: f"{en.latitude():.6f},{en.longitude():.6f}",
        "payment_card": en.credit_card_number,
        "bank_account": en.iban,
        "passport": en.passport_number,
        "password": lambda: rnd.choice((en.md5(), en.sha256(), en.password())),
        "secret": lambda: en.sha1() + en.md5(),
        "ip_address": lambda: rnd.choice((en.ipv4(), en.ipv6())),
        "case_record": lambda: fake.sentence(),
    }
    return makers[category]()


def test_masks_never_show_the_whole_value() -> None:
    fake, en, rnd = Faker("zh_CN"), Faker("en_US"), random.Random(5)
    fake.seed_instance(5)
    en.seed_instance(5)
    for category in PII_CATEGORIES:
        if category == "gender":  # shown as is: 男 or F identifies no one
            continue
        for _ in range(150):
            value = _values(category, fake, en, rnd)
            assert value not in mask(category, value), (category, value)


# --- field names -----------------------------------------------------------------------------------------


FIELD_NAMES = """
姓名 name               身份证号 national_id      身份证 national_id          手机号 phone
电话 phone              住址 address              地址 address                出生日期 birth_date
籍贯 birth_place        性别 gender               年龄 age                    邮箱 email
银行卡号 payment_card   护照号 passport           密码 password               案件 case_record
案由 case_record        紧急联系人电话 phone      嫌疑人身份证号码 national_id IP地址 ip_address
家庭住址 address        xm name                   sfzh national_id            sfz national_id
sjhm phone              sjh phone                 dh phone                    zz address
dz address              csrq birth_date           jg birth_place              xb gender
nl age                  yx email                  yhkh payment_card           hzh passport
mm password             ajbh case_record          RY_SFZH national_id         customer_phone phone
phoneNumber phone       id_card national_id       idcard national_id          national_id national_id
ssn national_id         mobile phone              tel phone                   e_mail email
dob birth_date          birthday birth_date       lat location                lng location
lon location            card_no payment_card      iban bank_account           passport_no passport
pwd password            passwd password           password_hash password      api_key secret
token secret            secret secret             ip ip_address               ip_addr ip_address
client_ip ip_address    case_no case_record       case_type case_record       description-of-case case_record
phone.number phone      customer.name name        EMAIL_ADDRESS email         homeAddress address
place_of_birth birth_place                        person.contact.phone phone  citizen:*.id_number national_id
"""


@pytest.mark.parametrize(("path", "category"), re.findall(r"(\S+) (\S+)", FIELD_NAMES))
def test_field_names(path: str, category: str) -> None:
    assert name_hint(path).category == category


@pytest.mark.parametrize(
    "path",
    ["id", "no", "num", "type", "code", "status", "amount", "product.name", "file_name", "page", "usage"],
)
def test_ambiguous_names_say_nothing(path: str) -> None:
    assert name_hint(path).category is None


# --- detection -------------------------------------------------------------------------------------------


def _rows(**columns: list[Any]) -> tuple[dict[str, Any], ...]:
    """Table rows from columns of values."""
    return tuple(dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True))


def _categories(samples: list[Sample]) -> dict[str, tuple[str, ...]]:
    pii, _ = detect(samples)
    return {c: hit.fields for c, hit in pii.items()}


def test_chinese_citizen_table_in_pinyin() -> None:
    ids = _ids(5)
    rows = _rows(
        id=list(range(1, 6)),
        xm=["王伟", "李娜", "张敏", "刘洋", "欧阳静"],
        sfzh=ids,
        sjhm=["13812345678", "15900001111", "18611112222", "13700001234", "19912345678"],
        zz=[
            "北京市朝阳区建国路1号",
            "上海市浦东新区世纪大道100号",
            "广东省深圳市南山区科技园",
            "浙江省杭州市西湖区文三路",
            None,
        ],
        csrq=[f"{i[6:10]}-{i[10:12]}-{i[12:14]}" for i in ids],
        xb=["男" if int(i[16]) % 2 else "女" for i in ids],
        nl=[34, 51, 28, 62, 45],
        jg=["浙江省杭州市", "四川省成都市", "山东省济南市", "湖北省武汉市", "河南省郑州市"],
        ddbh=[f"SO{20250000 + n}" for n in range(5)],
    )
    pii, places = detect([Sample("police", "ry", rows)])
    assert set(pii) == {
        "name",
        "national_id",
        "phone",
        "address",
        "birth_date",
        "gender",
        "age",
        "birth_place",
    }
    assert pii["national_id"].fields == ("sfzh",)
    assert (pii["national_id"].matches, pii["national_id"].sampled) == (5, 5)
    assert re.fullmatch(r"\d{4}\*{10}\d{3}[\dX]", pii["national_id"].example)
    assert re.fullmatch(r"1\d{2}\*{4}\d{4}", pii["phone"].example)
    assert places == {("police", "ry"): tuple(c for c in PII_CATEGORIES if c in pii)}


def test_english_customers_table() -> None:
    rows = _rows(
        customer_id=[1, 2],
        fullName=["John Smith", "Mary Johnson"],
        email=["john.smith@example.com", "mary.j@example.org"],
        phone=["(650) 253-0000", "+1 212-555-0188"],
        billing_address=[
            "1600 Amphitheatre Pkwy, Mountain View, CA 94043",
            "350 Fifth Avenue, New York, NY 10118",
        ],
        dob=["1980-04-01", "04/12/1975"],
        card_number=["4111 1111 1111 1111", "5500 0000 0000 0004"],
        last_login_ip=["203.0.113.7", "198.51.100.23"],
        password_hash=[
            "$2b$12$abcdefghijklmnopqrstuuJ2w7d1bS8cVqD0N8rE9kq3Yd5mZ1WzG",
            "5f4dcc3b5aa765d61d8327deb882cf99",
        ],
    )
    found = _categories([Sample("shop", "customers", rows)])
    assert found == {
        "name": ("fullName",),
        "email": ("email",),
        "phone": ("phone",),
        "address": ("billing_address",),
        "birth_date": ("dob",),
        "payment_card": ("card_number",),
        "password": ("password_hash",),
        "ip_address": ("last_login_ip",),
    }


def test_redis_hashes_and_memcached_json() -> None:
    ids = _ids(3, seed=9)
    redis = tuple(
        {"key": f"citizen:{n}", "type": "hash", "value": {"name": name, "id_number": i, "phone": phone}}
        for n, (name, i, phone) in enumerate(
            zip(("赵六", "钱七", "孙八"), ids, ("13912345678", "13698765432", "15012341234"), strict=True), 1
        )
    )
    memcached = (
        {
            "key": "user:1",
            "value": {"profile": {"contact": {"email": "a.li@example.cn", "phone": "+86 138 0013 8000"}}},
        },
        {
            "key": "user:2",
            "value": {"profile": {"contact": {"email": "b.wu@example.cn", "phone": "+86 139 0013 9000"}}},
        },
        {"key": "page:7", "value": "<div>hello</div>"},
    )
    pii, places = detect([Sample("0", "keys", redis), Sample("", "items", memcached)])
    assert pii["national_id"].fields == ("citizen:*.id_number",)
    assert pii["name"].fields == ("citizen:*.name",)
    assert pii["phone"].fields == ("citizen:*.phone", "user:*.profile.contact.phone")
    assert pii["email"].fields == ("user:*.profile.contact.email",)
    assert places == {("0", "keys"): ("name", "national_id", "phone"), ("", "items"): ("phone", "email")}


def test_search_documents_contact_lists_and_keys_holding_data() -> None:
    hits = (
        {
            "_index": "person",
            "_source": {"xm": "张三", "contacts": [{"value": "13812345678"}, {"value": "z@x.cn"}]},
        },
        {
            "_index": "person",
            "_source": {"xm": "李四", "contacts": [{"value": "13987654321"}, {"value": "l@x.cn"}]},
        },
    )
    keys = tuple(
        {"key": f"sms:code:{p}", "type": "string", "value": "482913"} for p in ("13812345678", "15012345678")
    )
    assert _categories([Sample("", "person", hits), Sample("0", "keys", keys)]) == {
        "name": ("_source.xm",),
        "phone": ("_source.contacts.value", "sms:code:*"),
        "email": ("_source.contacts.value",),
    }


def test_phones_and_ids_inside_free_text() -> None:
    rows = tuple(
        {
            "remark": f"请联系王先生，电话{phone}，周末送货",
            "jyaq": f"2023年5月，嫌疑人李某（身份证号{i}）涉嫌诈骗。",
        }
        for phone, i in zip(("13812345678", "13987654321"), _ids(2, seed=3), strict=True)
    )
    found = _categories([Sample("db", "notes", rows)])
    assert found == {"phone": ("remark",), "national_id": ("jyaq",), "case_record": ("jyaq",)}


def test_traps_give_nothing() -> None:
    bad_ids = [i[:-1] + ("0" if i[-1] != "0" else "1") for i in _ids(5, seed=4)]
    rows = tuple(
        {
            "order_no": f"62220212345678{n:04d}0",
            "sfzh": bad_ids[n],
            "ts": 1700000000123 + n,
            "seq": f"2023120500{n}",
            "checksum": ("5f4dcc3b5aa765d61d8327deb882cf99", "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12")[
                n % 2
            ],
            "request_id": f"4919f01c-3578-486b-8847-94d95238169{n}",
            "app_version": f"4.12.{n}.0",
            "price": 19.99 + n,
            "views": 10 + n,
            "page": n + 1,
            "created_at": f"2024-0{n + 1}-15",
            "status": "paid",
        }
        for n in range(5)
    )
    assert detect([Sample("shop", "orders", rows)]) == ({}, {})


def test_outputs_hold_no_raw_value() -> None:
    ids, phones = _ids(20, seed=8), [f"1{3 + n % 7}{n:09d}" for n in range(20)]
    rows = tuple({"sfzh": i, "sjhm": p, "note": f"call {p}"} for i, p in zip(ids, phones, strict=True))
    output = repr(detect([Sample("db", "t", rows)]))
    assert "national_id" in output and "phone" in output
    assert not any(raw in output for raw in ids + phones)


nested = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=12), children, max_size=6)
    ),
    max_leaves=15,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.dictionaries(st.text(max_size=12), nested, max_size=6), max_size=5))
def test_detect_never_raises(documents: list[dict[str, Any]]) -> None:
    pii, places = detect([Sample("db", "c", tuple(documents))])
    assert set(pii) <= set(PII_CATEGORIES)
    assert all(set(categories) <= set(pii) for categories in places.values())
    assert all(hit.matches <= hit.sampled for hit in pii.values())


def test_hostile_documents_are_bounded() -> None:
    deep: dict[str, Any] = {"phone": "13812345678"}
    for _ in range(5000):
        deep = {"a": deep}
    wide = {f"k{n}": "13812345678" for n in range(100_000)}
    long_text = {"remark": "13812345678 " * 100_000}
    detect([Sample("db", "c", (deep, wide, long_text, {"key": "x", "value": [[[[["1"]]]]]}))])
