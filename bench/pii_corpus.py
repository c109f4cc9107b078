"""A labelled corpus for the personal-data detector: deterministic (seeded Faker zh_CN / en_US), synthetic.

Each table is a sample of a few rows; each field is labelled with the categories its values hold.
- positives for every category under English, Chinese and pinyin names, in snake/camel/kebab/upper
  case, with prefixes and nested paths, some Redis/Memcached-style key-value tables, a little dirt
  (empty cells, "unknown");
- positives under neutral names ("f3", "remark") and misleading names (a "phone" column of e-mails)
  for the values that prove their category alone; phones and e-mails written inside free text;
- traps: order numbers failing Luhn, 18-digit numbers failing the resident-ID check (also in "sfzh"),
  ms and s timestamps, 11-digit numbers that are not phones, md5/sha1/sha256 hashes, UUIDs, versions,
  prices, counters ("page", "usage"), non-birth dates, product names, file names, MAC addresses.
A value is labelled by what it is, not by what the detector can see: a bare 10-digit US number under
a neutral name is not generated, since nothing could tell it from an order number.
"""

from __future__ import annotations

import base64
import json
import random
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import phonenumbers
from faker import Faker
from stdnum import luhn
from stdnum.cn import ric

from leaksonar.lab.data import national_id
from leaksonar.model import Sample

Maker = Callable[["Gen"], Any]


def _n(names: str) -> tuple[str, ...]:
    """Field names written as "a|b|c"."""
    return tuple(names.split("|"))


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    """The field's path inside a row (dotted when nested)."""
    values: tuple[Any, ...]
    expected: frozenset[str]
    kind: str
    """named, variant, unseen (names written apart from the lexicon), neutral, misleading, free_text, trap."""


@dataclass(frozen=True, slots=True)
class Table:
    database: str
    name: str
    rows: int
    fields: tuple[Field, ...]
    kv_prefix: str | None = None
    """Key-value table: row i is {"key": f"{kv_prefix}:{i}", "type": "hash", "value": {...}}."""

    def path(self, field: Field) -> str:
        """The path the detector gives the field."""
        return f"{self.kv_prefix}:*.{field.name}" if self.kv_prefix else field.name

    def labels(self) -> dict[str, Field]:
        return {self.path(f): f for f in self.fields}

    def sample(self) -> Sample:
        documents = []
        for row in range(self.rows):
            document: dict[str, Any] = {}
            for f in self.fields:
                _put(document, f.name.split("."), f.values[row])
            if self.kv_prefix:
                document = {"key": f"{self.kv_prefix}:{row + 1}", "type": "hash", "value": document}
            documents.append(document)
        return Sample(self.database, self.name, tuple(documents))


def _put(document: dict[str, Any], path: list[str], value: Any) -> None:
    for part in path[:-1]:
        document = document.setdefault(part, {})
    document[path[-1]] = value


@dataclass
class Gen:
    """Random sources of one corpus."""

    rnd: random.Random
    zh: Faker
    en: Faker
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def seeded(cls, seed: int) -> Gen:
        zh, en = Faker("zh_CN"), Faker("en_US")
        zh.seed_instance(seed)
        en.seed_instance(seed + 1)
        return cls(random.Random(seed), zh, en)

    def pick(self, items: Any) -> Any:
        return self.rnd.choice(items)

    def chance(self, p: float) -> bool:
        return self.rnd.random() < p

    def digits(self, n: int, first: str = "123456789") -> str:
        return self.pick(first) + "".join(self.pick(string.digits) for _ in range(n - 1))

    def day(self, start: int = 1930, end: int = 2015) -> date:
        return date(start, 1, 1) + timedelta(days=self.rnd.randrange((end - start) * 365))


# --- values ------------------------------------------------------------------------------------------


def resident_id(g: Gen) -> str:
    return national_id(g.rnd, g.day(), g.chance(0.5))


def ssn(g: Gen) -> str:
    return g.en.ssn()


def _valid_phone(g: Gen, make: Callable[[], str], region: str) -> str:
    while True:
        number = make()
        try:
            if phonenumbers.is_valid_number(phonenumbers.parse(number, region)):
                return number
        except phonenumbers.NumberParseException:
            pass


def cn_mobile(g: Gen) -> str:
    number = _valid_phone(g, g.zh.phone_number, "CN")
    style = g.rnd.randrange(6)
    if style == 0:
        return f"+86 {number[:3]} {number[3:7]} {number[7:]}"
    if style == 1:
        return f"{number[:3]}-{number[3:7]}-{number[7:]}"
    return number


def cn_landline(g: Gen) -> str:
    area = g.pick(("010", "021", "022", "023", "0755", "0571", "0512", "027", "028", "029"))
    return _valid_phone(g, lambda: f"{area}-{g.digits(8, '2345678')}", "CN")


def us_phone(g: Gen) -> str:
    number = _valid_phone(g, g.en.basic_phone_number, "US")
    digits = "".join(c for c in number if c.isdigit())[-10:]
    a, b, c = digits[:3], digits[3:6], digits[6:]
    return g.pick((f"({a}) {b}-{c}", f"{a}-{b}-{c}", f"{a}.{b}.{c}", f"+1 {a} {b} {c}", f"+1-{a}-{b}-{c}"))


def phone(g: Gen) -> str:
    return g.pick((cn_mobile, cn_mobile, cn_mobile, us_phone, us_phone, cn_landline))(g)


def bare_phone(g: Gen) -> str:
    """A phone as stored in a column named for one, often without punctuation."""
    if g.chance(0.5):
        return _valid_phone(g, g.zh.phone_number, "CN")
    return "".join(c for c in us_phone(g) if c.isdigit())[-10:] if g.chance(0.5) else us_phone(g)


def email(g: Gen) -> str:
    return (g.zh if g.chance(0.5) else g.en).email()


def address(g: Gen) -> str:
    if g.chance(0.5):
        return g.zh.address()
    return g.en.address().replace("\n", g.pick((", ", " ", "\n")))


def person_name(g: Gen) -> str:
    return g.zh.name() if g.chance(0.55) else g.en.name()


def birth_date(g: Gen) -> Any:
    day = g.day()
    return g.pick(
        (
            day.isoformat(),
            day.strftime("%Y/%m/%d"),
            day.strftime("%Y%m%d"),
            f"{day.year}年{day.month}月{day.day}日",
            day.strftime("%m/%d/%Y"),
            day.strftime("%Y-%m-%d 00:00:00"),
            day.strftime("%Y-%m-%dT00:00:00Z"),
        )
    )


def age(g: Gen) -> Any:
    years = g.rnd.randrange(1, 100)
    return g.pick((years, years, str(years), f"{years}岁"))


def birth_place(g: Gen) -> str:
    if g.chance(0.7):
        return g.zh.province() + g.pick((g.zh.city(), g.zh.city_name() + "市", ""))
    return g.pick((g.en.city(), f"{g.en.city()}, {g.en.state_abbr()}"))


def gender(g: Gen) -> Any:
    options = (("男", "女"), ("M", "F"), ("male", "female"), ("Male", "Female"), (1, 2), ("1", "2"))
    return g.pick(options[g.extra.get("gender_style", 0)])


def latitude(g: Gen) -> float:
    return round(g.rnd.uniform(-60, 70), 6) or 1.0


def longitude(g: Gen) -> float:
    return round(g.rnd.uniform(-179, 179), 6) or 1.0


def gps_pair(g: Gen) -> str:
    lat, lng = latitude(g), longitude(g)
    return g.pick((f"{lat:.6f},{lng:.6f}", f"{lat:.5f}, {lng:.5f}", f"({lat:.6f}, {lng:.6f})"))


def coordinates(g: Gen) -> list[float]:
    return [longitude(g), latitude(g)]


def payment_card(g: Gen) -> str:
    if g.chance(0.3):
        body = "62" + g.digits(g.pick((13, 14, 15, 16)), string.digits)
        number = body + luhn.calc_check_digit(body)
    else:
        number = g.en.credit_card_number()
    if g.chance(0.3) and len(number) == 16:
        return " ".join(number[i : i + 4] for i in range(0, 16, 4))
    return number


def iban(g: Gen) -> str:
    number = g.en.iban()
    return " ".join(number[i : i + 4] for i in range(0, len(number), 4)) if g.chance(0.3) else number


def bank_account(g: Gen) -> str:
    return iban(g) if g.chance(0.5) else g.digits(g.pick((12, 16, 17, 19)))


def passport(g: Gen) -> str:
    return g.pick(
        (
            lambda: "E" + g.digits(8, string.digits),
            lambda: "E" + g.pick(string.ascii_uppercase) + g.digits(7, string.digits),
            lambda: "G" + g.digits(8, string.digits),
            g.en.passport_number,
        )
    )()


def bcrypt(g: Gen) -> str:
    alphabet = "./" + string.ascii_letters + string.digits
    return f"$2{g.pick('aby')}$1{g.pick('0123')}$" + "".join(g.pick(alphabet) for _ in range(53))


def password(g: Gen) -> str:
    return g.pick((g.en.md5, g.en.sha1, g.en.sha256, lambda: bcrypt(g), g.en.password, g.en.password))()


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def known_secret(g: Gen) -> str:
    alnum = string.ascii_letters + string.digits
    return g.pick(
        (
            lambda: "AKIA" + "".join(g.pick(string.ascii_uppercase + string.digits) for _ in range(16)),
            lambda: "ghp_" + "".join(g.pick(alnum) for _ in range(36)),
            lambda: "sk_live_" + "".join(g.pick(alnum) for _ in range(24)),
            lambda: "xoxb-" + g.digits(11) + "-" + "".join(g.pick(alnum) for _ in range(24)),
            lambda: (
                f"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.{_b64({'sub': g.rnd.randrange(10**6)})}."
                + "".join(g.pick(alnum + "-_") for _ in range(43))
            ),
        )
    )()


def secret(g: Gen) -> str:
    alnum = string.ascii_letters + string.digits
    return g.pick(
        (
            known_secret,
            lambda g: "".join(g.pick(alnum) for _ in range(g.pick((32, 40)))),
            lambda g: g.en.sha1(),
            lambda g: g.en.uuid4(),
        )
    )(g)


def ip_address(g: Gen) -> str:
    return g.pick((g.en.ipv4_public, g.en.ipv4_public, g.en.ipv4_private, g.en.ipv6))()


_CASE_TYPES_ZH = _n("盗窃|诈骗|电信网络诈骗|故意伤害|寻衅滋事|交通肇事|非法拘禁|赌博|抢劫|贩卖毒品")
_CASE_TYPES_EN = ("Burglary", "Fraud", "Assault", "Robbery", "Theft", "Drug trafficking", "Vandalism", "DUI")


def case_number(g: Gen) -> str:
    year = g.rnd.randrange(2010, 2026)
    return g.pick(
        (
            f"A{g.digits(6)}{year}{g.digits(5, string.digits)}",
            f"J{g.digits(6)}{year}{g.digits(6, string.digits)}",
            f"公(刑)立字[{year}]{g.digits(5)}号",
            f"CR-{year}-{g.digits(6, string.digits)}",
        )
    )


def case_description(g: Gen, with_pii: str | None = None) -> str:
    when = g.day(2015, 2025)
    extra = {"national_id": resident_id, "phone": lambda g: cn_mobile(g).replace(" ", "")}.get(with_pii or "")
    if g.chance(0.6):
        text = f"{when.year}年{when.month}月{when.day}日，{g.zh.name()}在{g.zh.city()}{g.zh.street_name()}"
        text += f"涉嫌{g.pick(_CASE_TYPES_ZH)}，涉案金额{g.rnd.randrange(100, 100000)}元。"
        if extra:
            text += g.pick(("嫌疑人身份证号", "联系电话", "号码：")) + extra(g) + "。"
        return text
    offence = g.pick(_CASE_TYPES_EN).lower()
    text = f"On {when:%B %d, %Y}, {g.en.name()} was reported for {offence} near {g.en.street_name()}."
    return text + (f" Contact: {extra(g)}." if extra else "")


def case_record(g: Gen) -> str:
    return g.pick((case_number, lambda g: g.pick(_CASE_TYPES_ZH), case_description))(g)


def note_with_phone(g: Gen) -> str:
    number = cn_mobile(g) if g.chance(0.6) else us_phone(g)
    return g.pick(
        (
            f"请联系{g.zh.name()}，电话{number}，周末送货",
            f"客户要求改期，手机{number}",
            f"Call {g.en.first_name()} at {number} after 5pm",
            f"Customer asked for a refund, reach them on {number}.",
        )
    )


def note_with_email(g: Gen) -> str:
    return g.pick(
        (
            f"发票请发到{email(g)}，谢谢",
            f"Send the invoice to {email(g)} please",
            f"Forwarded from {email(g)}: {g.en.sentence(nb_words=6)}",
        )
    )


# --- traps ---------------------------------------------------------------------------------------------


def bad_luhn(g: Gen) -> str:
    number = payment_card(g).replace(" ", "")
    last = str((int(number[-1]) + g.rnd.randrange(1, 10)) % 10)
    return number[:-1] + last


def order_number(g: Gen) -> str:
    """A long number failing the Luhn check."""
    number = g.pick(
        (bad_luhn, lambda g: g.digits(g.pick((16, 18, 19, 20))), lambda g: "2023" + g.digits(12))
    )(g)
    return number if luhn.checksum(number) else number[:-1] + str((int(number[-1]) + 1) % 10)


def bad_resident_id(g: Gen) -> str:
    number = resident_id(g)
    style = g.rnd.randrange(3)
    if style == 0:
        return number[:-1] + g.pick([c for c in "0123456789X" if c != number[-1]])
    if style == 1:
        body = "99" + number[2:17]  # no such area
        return body + ric.calc_check_digit(body + "0")
    number = g.digits(18)
    return number if luhn.checksum(number) else number[:-1] + str((int(number[-1]) + 1) % 10)


def ms_timestamp(g: Gen) -> Any:
    value = g.rnd.randrange(1_500_000_000_000, 1_800_000_000_000)
    return value if g.chance(0.5) else str(value)


def s_timestamp(g: Gen) -> Any:
    value = g.rnd.randrange(1_000_000_000, 1_800_000_000)
    return value if g.chance(0.5) else str(value)


def not_a_phone(g: Gen) -> str:
    return g.pick(
        (lambda: g.digits(11, "23456789"), lambda: "1" + g.pick("012") + g.digits(9, string.digits))
    )()


def a_hash(g: Gen) -> str:
    return g.pick((g.en.md5, g.en.sha1, g.en.sha256))()


def version(g: Gen) -> str:
    r = g.rnd.randrange
    return g.pick(
        (
            f"{r(0, 12)}.{r(0, 30)}.{r(0, 50)}",
            f"v{r(1, 9)}.{r(0, 9)}.{r(0, 9)}-beta",
            f"{r(1, 12)}.{r(0, 20)}.{r(0, 99)}.{r(0, 999)}",
        )
    )


def price(g: Gen) -> Any:
    value = round(g.rnd.uniform(0.5, 9999), 2)
    return g.pick((value, f"{value:.2f}", f"¥{value:.2f}", int(value)))


def counter(g: Gen) -> int:
    return g.rnd.randrange(0, 120)


def other_date(g: Gen) -> str:
    return g.day(1995, 2025).isoformat() + g.pick(("", " 12:30:00"))


def product(g: Gen) -> str:
    return g.pick(
        (
            lambda: g.en.catch_phrase(),
            lambda: g.zh.word() + g.pick(("手机壳", "数据线", "充电宝")),
            g.en.file_name,
        )
    )()


def small_code(g: Gen) -> str:
    return g.pick(("M", "L", "S", "XL", "A", "B", "OK", "pending", "paid", "1", "0"))


def sentence(g: Gen) -> str:
    return g.zh.sentence(nb_words=8) if g.chance(0.5) else g.en.sentence(nb_words=10)


def handle(g: Gen) -> str:
    return g.en.user_name()


# --- field names ------------------------------------------------------------------------------------------


def _style(g: Gen, words: list[str]) -> str:
    """English words as a column name in one of the usual spellings."""
    if any(ord(c) > 127 for w in words for c in w):
        return "".join(words)
    style = g.rnd.randrange(6)
    if style == 0:
        return words[0] + "".join(w.capitalize() for w in words[1:])
    if style == 1:
        return "".join(w.capitalize() for w in words)
    if style == 2:
        return "_".join(words).upper()
    if style == 3:
        return "-".join(words)
    return "_".join(words)


_PREFIXES = ("", "", "", "person.", "data.", "profile.", "customer.", "user.info.", "suspect.")
_QUALIFIERS = ("home", "receiver", "emergency contact", "owner", "holder", "applicant", "buyer", "new")
_QUALIFIERS_ZH = ("收货人", "紧急联系人", "户主", "申请人", "本人", "现")


def _name(g: Gen, options: tuple[str, ...], nested: bool = True, qualify: bool = True) -> str:
    """A field name from `options`, sometimes qualified ("receiver phone", "收货人手机号") or nested."""
    base = g.pick(options)
    if nested and qualify and g.chance(0.2):
        chinese = any(ord(c) > 0x3000 for c in base)
        english = _QUALIFIERS[1:] if base == "name" else _QUALIFIERS
        base = g.pick(_QUALIFIERS_ZH) + base if chinese else f"{g.pick(english)} {base}"
    name = _style(g, base.split())
    return (g.pick(_PREFIXES) + name) if nested else name


POSITIVES: dict[str, tuple[tuple[str, ...], Maker]] = {
    "name": (
        _n("name|full name|customer name|contact name|real name|姓名|真实姓名|客户姓名|xm|zsxm"),
        person_name,
    ),
    "national_id": (
        _n("id number|id card|national id|citizen id|idcard no|身份证号|身份证号码|公民身份号码|证件号码")
        + _n("sfzh|sfz|gmsfhm|zjhm"),
        resident_id,
    ),
    "phone": (
        _n("phone|mobile|tel|phone number|cell phone|contact phone|手机号|电话|联系电话|手机号码")
        + _n("sjhm|sjh|dh|lxdh"),
        bare_phone,
    ),
    "email": (_n("email|e mail|email address|mail|contact email|邮箱|电子邮箱|yx|dzyx"), email),
    "address": (
        _n("address|home address|addr|shipping address|street address|住址|地址|家庭住址|现住址|户籍地址")
        + _n("zz|dz|xzz|hjdz|jtzz"),
        address,
    ),
    "birth_date": (_n("birth date|date of birth|dob|birthday|出生日期|出生年月|生日|csrq"), birth_date),
    "age": (_n("age|customer age|年龄|nl"), age),
    "birth_place": (_n("birth place|place of birth|birthplace|hometown|籍贯|出生地|jg|csd"), birth_place),
    "gender": (_n("gender|sex|性别|xb"), gender),
    "location": (_n("lat|lng|latitude|longitude|lon|经度|纬度|jd|wd"), latitude),
    "payment_card": (
        _n("card number|card no|credit card|cc number|bank card no|银行卡号|卡号|信用卡号|yhkh|kh"),
        payment_card,
    ),
    "bank_account": (_n("iban|bank account|account number|bank account no|银行账号|yhzh"), bank_account),
    "passport": (_n("passport|passport no|passport number|护照号|护照号码|hzh"), passport),
    "password": (_n("password|pwd|passwd|password hash|user password|密码|登录密码|mm|dlmm"), password),
    "secret": (_n("api key|token|secret|access token|client secret|auth token|密钥|令牌"), secret),
    "ip_address": (_n("ip|ip addr|client ip|remote addr|last login ip|IP地址|登录IP|ipdz"), ip_address),
    "case_record": (
        _n("case no|case type|case description|description of case|case summary|案件编号|案由|案件类型")
        + _n("简要案情|案情|ajbh|ajlb|ay|jyaq"),
        case_record,
    ),
}
"""Category -> (field names, value maker) for named positives."""

VARIANTS: dict[str, tuple[str, ...]] = {
    "name": _n(
        "cust_name|client_full_name|patientName|NAME_CN|姓名全称|用户姓名|联系人名称|passenger_name|xingming"
    ),
    "national_id": _n(
        "id_no|idNumber|identity_no|citizen_no|身份证件号码|证件号|sfzhm|cert_no|id_card_number"
    ),
    "phone": _n(
        "mobile_no|phoneNo|telephone_number|cellphone|contact_tel|联系手机|手机|移动电话|tel_no|mobilePhone"
    ),
    "email": _n("emailAddr|mail_addr|user_email|电子邮件|邮件地址|email_1|contactEmail"),
    "address": _n(
        "residential_address|addr_line1|street|居住地址|通讯地址|详细地址|home_addr|mailing_address"
    ),
    "birth_date": _n("birthdate|bday|出生年月日|birth_dt|date_birth|dateOfBirth"),
    "age": _n("age_years|年纪|cust_age|patient_age"),
    "birth_place": _n("native_place|出生地点|祖籍|place_born|birth_city"),
    "gender": _n("sex_code|性别代码|gender_cd|xingbie|SEX"),
    "location": _n("latitude_deg|geo_lat|gps_lng|位置纬度|longitude_val"),
    "payment_card": _n("cardNo|pan_number|credit_card_no|bank_card|卡号码|card_num|cc_num"),
    "bank_account": _n("acct_no|bank_acct_number|iban_code|银行账户|收款账号"),
    "passport": _n("passport_id|passportNo|护照编号|passport_num|travel_doc_no"),
    "password": _n("user_pwd|login_password|pass_hash|pwd_md5|口令|登陆密码"),
    "secret": _n("apiKey|access_key_secret|app_secret|auth_key|refresh_token|session_token|私钥"),
    "ip_address": _n("ip_address|login_ip|remote_ip|src_ip|登录ip地址|ipv4_addr"),
    "case_record": _n("case_id|case_category|案件描述|案件性质|crime_type|offense_desc|ajxz"),
}
"""Category -> column names written without looking at the lexicon (then used to extend it)."""

UNSEEN: dict[str, tuple[str, ...]] = {
    "name": _n("realName|full_nm|insured_name|owner_nm|持有人姓名|当事人姓名|xm_1|beneficiary_name"),
    "national_id": _n("idcardno|id_card_num|identityNumber|身份证明号码|zjhm_1|sfz_hm|national_id_no|nid"),
    "phone": _n("mobileNumber|telephone1|phone_num|contact_mobile|手机号码1|联系人电话|lxdh2|work_tel"),
    "email": _n("e-mail|emailaddress|mail_address|电子信箱|yxdz|notify_email"),
    "address": _n("address1|addr_detail|home_address_line|住宅地址|家庭地址|现居住地址|zhuzhi|postal_addr"),
    "birth_date": _n("birth_day|date_of_birth_str|出生日|born_on|dob_date"),
    "age": _n("current_age|age_at_visit|周岁|nl_sui"),
    "birth_place": _n("birthPlace|出生地址|籍贯地|jgdz"),
    "gender": _n("gender_code|sex_flag|性别名称|xbdm|sexType"),
    "location": _n("lat_deg|latitude_wgs84|经度坐标|gps_lat|geo_point"),
    "payment_card": _n("card_no_1|bankCardNo|debit_card_number|yhkhm|信用卡卡号|ccNumber"),
    "bank_account": _n("account_no|bank_account_number|iban_number|khzh|银行账户号|settlement_account"),
    "passport": _n("passport_number_1|ppt_no|护照证件号|hzhm|passportId"),
    "password": _n("passwordHash|user_passwd|login_pwd|mm_md5|encrypted_password|登录口令"),
    "secret": _n("api_secret|accessToken|client_token|app_key_secret|webhook_token"),
    "ip_address": _n("ipAddr|client_ip_addr|last_ip|客户端IP|登录IP地址|source_ip_address"),
    "case_record": _n("case_number|caseNo|案件编码|案件简要|ajbm|offence_type|charges_desc"),
}
"""Category -> more column names written without looking at the lexicon, kept out of its tuning."""

EXTRA_POSITIVES: tuple[tuple[str, tuple[str, ...], Maker], ...] = (
    ("national_id", ("ssn", "social security number", "SSN"), ssn),
    ("location", ("location", "geo", "gps", "坐标", "position"), gps_pair),
    ("location", ("coordinates", "geo coordinates", "loc"), coordinates),
    ("phone", ("contact number", "联系方式", "mobile phone"), phone),
)
"""More named positives with other value shapes."""

ALONE: dict[str, Maker] = {
    "national_id": lambda g: resident_id(g) if g.chance(0.8) else ssn(g),
    "phone": lambda g: g.pick((cn_mobile, cn_mobile, us_phone, cn_landline))(g),
    "email": email,
    "payment_card": payment_card,
    "bank_account": lambda g: g.en.iban(),
    "ip_address": ip_address,
    "location": gps_pair,
    "password": bcrypt,
    "secret": known_secret,
}
"""Categories whose values prove themselves, for neutral and misleading names."""

NEUTRAL_NAMES = _n("f1|f2|col3|c4|field5|remark|extra|value|info|ref|code|data.x|attr.a|memo|备注|bz|contact")
NEUTRAL_NAMES += _n("account|login|user")
MISLEADING = {
    "email": ("phone", "mobile", "tel", "sjhm", "xm", "name"),
    "phone": ("email", "yx", "xm", "name", "sfzh", "address"),
    "national_id": ("phone", "name", "xm", "sjhm", "birthday"),
    "payment_card": ("phone", "xm", "name", "email"),
    "ip_address": ("name", "phone", "email"),
    "location": ("name", "email", "xm"),
}
"""Category of the values -> names of other categories that such values do not fit."""

FREE_TEXT: tuple[tuple[str, Maker], ...] = (
    ("phone", note_with_phone),
    ("email", note_with_email),
)
FREE_TEXT_NAMES = ("remark", "note", "comment", "message", "备注", "留言", "bz", "description")

TRAPS: tuple[tuple[tuple[str, ...], Maker], ...] = (
    (_n("order no|order id|订单号|ddbh|trade no|ref no|f1|card no|银行卡号"), order_number),
    (("serial no", "流水号", "lsh", "sfzh", "id number", "身份证号", "f2", "biz code"), bad_resident_id),
    (("ts", "created ms", "timestamp", "time", "update time", "event time", "f3"), ms_timestamp),
    (("created", "login time", "expire", "f4", "mtime"), s_timestamp),
    (("seq", "uid", "code", "no", "qq", "member no", "f5"), not_a_phone),
    (("checksum", "md5", "etag", "file hash", "digest", "f6", "sign", "fingerprint"), a_hash),
    (("uuid", "request id", "trace id", "guid", "f7", "session", "device id"), lambda g: g.en.uuid4()),
    (("version", "app version", "ver", "build", "release", "firmware"), version),
    (("price", "amount", "total", "金额", "je", "score", "rate", "f8"), price),
    (("count", "views", "likes", "num", "page", "usage", "stage", "level", "rank", "retry"), counter),
    (("created at", "order date", "update time", "入职日期", "pay date", "f9"), other_date),
    (("product name", "file name", "商品名称", "title", "item", "product"), product),
    (("status", "type", "code", "size", "grade", "flag"), small_code),
    (("content", "summary", "描述", "title", "subject", "comment"), sentence),
    (("nickname", "username", "login", "handle", "user"), handle),
    (("mac", "mac address", "device mac"), lambda g: g.en.mac_address()),
    (
        _n("phone model|phone brand|card type|passport type"),
        lambda g: g.pick(("iPhone 15", "VISA", "普通护照")),
    ),
    (
        _n("email verified|phone verified|is mobile|has passport"),
        lambda g: g.pick((0, 1, "0", "1", "Y", "N")),
    ),
    (("age group", "age range", "年龄段"), lambda g: g.pick(("18-25", "26-35", "36-50", "50+"))),
    (("address id", "ip count", "login count", "card count", "case count"), counter),
    (("token type",), lambda g: g.pick(("Bearer", "bearer", "MAC"))),
    (("image", "avatar", "icon"), lambda g: f"icon@{g.rnd.randrange(1, 4)}x.png"),
    (("id", "no", "num", "type", "code", "status", "amount"), lambda g: g.rnd.randrange(1, 10**6)),
)
"""Field names and values that hold no personal data."""


def _column(g: Gen, maker: Maker, rows: int, dirty: bool) -> tuple[Any, ...]:
    """One column: `rows` values, with empty cells and junk when `dirty`."""
    g.extra["gender_style"] = g.rnd.randrange(6)
    values = []
    for _ in range(rows):
        if dirty and g.chance(0.1):
            values.append(g.pick((None, "", "unknown", "无")))
        else:
            values.append(maker(g))
    return tuple(values)


def _field(g: Gen, name: str, maker: Maker, rows: int, expected: set[str], kind: str) -> Field:
    values = _column(g, maker, rows, dirty=kind in ("named", "variant", "unseen"))
    empty = all(v in (None, "", "unknown", "无") for v in values)
    return Field(name, values, frozenset() if empty else frozenset(expected), kind)


def _mixed_field(g: Gen, rows: int) -> Field:
    """A "contacts.value"-like field: phones and e-mails in turn."""
    kinds = [("phone", ALONE["phone"]), ("email", email)][g.rnd.randrange(2) :] * rows
    values = tuple(maker(g) for _, maker in kinds[:rows])
    name = g.pick(("contacts.value", "contact", "联系方式值", "f8", "channels.address"))
    return Field(name, values, frozenset(c for c, _ in kinds[:rows]), "mixed")


def _random_field(g: Gen, rows: int) -> Field:
    """One labelled field of any kind."""
    roll = g.rnd.random()
    if roll < 0.33:
        category = g.pick(tuple(POSITIVES))
        names, maker = POSITIVES[category]
        return _field(g, _name(g, names), maker, rows, {category}, "named")
    if roll < 0.40:
        kind, names = g.pick((("variant", VARIANTS), ("unseen", UNSEEN)))
        category = g.pick(tuple(names))
        name = g.pick(_PREFIXES) + g.pick(names[category])
        return _field(g, name, POSITIVES[category][1], rows, {category}, kind)
    if roll < 0.47:
        category, names, maker = g.pick(EXTRA_POSITIVES)
        return _field(g, _name(g, names), maker, rows, {category}, "named")
    if roll < 0.57:
        category = g.pick(tuple(ALONE))
        return _field(g, _name(g, NEUTRAL_NAMES, nested=False), ALONE[category], rows, {category}, "neutral")
    if roll < 0.62:
        category = g.pick(tuple(MISLEADING))
        return _field(g, _name(g, MISLEADING[category]), ALONE[category], rows, {category}, "misleading")
    if roll < 0.67:
        category, maker = g.pick(FREE_TEXT)
        return _field(g, _name(g, FREE_TEXT_NAMES, nested=False), maker, rows, {category}, "free_text")
    if roll < 0.69:
        pii = g.pick(("national_id", "phone"))
        names = POSITIVES["case_record"][0]
        maker: Maker = lambda g: case_description(g, pii)  # noqa: E731
        return _field(g, _name(g, names), maker, rows, {"case_record", pii}, "free_text")
    if roll < 0.71:
        return _mixed_field(g, rows)
    names, maker = g.pick(TRAPS)
    return _field(g, _name(g, names, qualify=False), maker, rows, set(), "trap")


def table(g: Gen, number: int) -> Table:
    """One labelled table of 1 to 20 rows and 3 to 10 fields with distinct names."""
    rows = g.pick((1, 2, 3, 5, 5, 5, 5, 8, 10, 20))
    fields: dict[str, Field] = {}
    for _ in range(g.rnd.randrange(3, 11)):
        candidate = _random_field(g, rows)
        if not any(
            candidate.name == n or candidate.name.startswith(n + ".") or n.startswith(candidate.name + ".")
            for n in fields
        ):
            fields[candidate.name] = candidate
    kv = g.pick(("citizen", "user", "member", "cache:profile")) if g.chance(0.15) else None
    return Table(f"db{number % 7}", f"t{number}", rows, tuple(fields.values()), kv)


def corpus(seed: int = 7, tables: int = 600) -> list[Table]:
    """`tables` labelled tables, the same for the same seed."""
    g = Gen.seeded(seed)
    return [table(g, n) for n in range(tables)]
