"""Value checks for personal data (masks are in `masks.py`). Pure, no I/O.

Two strengths of check:
- `classify` says what a value proves on its own (checksums, strict formats): a resident ID with a valid
  area code, birth date and check digit; a Luhn-valid card with a plausible issuer prefix; a mobile
  number of a real numbering plan. A number that fails its checksum proves nothing.
- `NAME_CHECKS` say whether a value agrees with what its field is named for (``dob`` holding a past
  date, ``xb`` holding 男/女): weaker evidence, used only together with the name.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator
from datetime import date
from functools import cache, lru_cache
from itertools import chain

import phonenumbers
from stdnum import iban, luhn, numdb
from stdnum.be import nn as be_nn
from stdnum.br import cpf as br_cpf
from stdnum.ca import sin as ca_sin
from stdnum.cn import ric
from stdnum.dk import cpr as dk_cpr
from stdnum.es import dni as es_dni
from stdnum.es import nie as es_nie
from stdnum.fi import hetu as fi_hetu
from stdnum.fr import nir as fr_nir
from stdnum.in_ import aadhaar as in_aadhaar
from stdnum.it import codicefiscale as it_codicefiscale
from stdnum.kr import rrn as kr_rrn
from stdnum.nl import bsn as nl_bsn
from stdnum.pl import pesel as pl_pesel
from stdnum.se import personnummer as se_personnummer
from stdnum.tr import tckimlik as tr_tckimlik
from stdnum.us import ssn as us_ssn

from leaksonar.assess.lexicon import lexicon

# phonenumbers keeps its metadata patterns compiled instead of recompiling those that fall out of the
# re module's cache (a quarter of a phone check). The set is the library's fixed metadata, not what
# servers send: 1,810 patterns, under 1 MB, after numbers of every region.
phonenumbers.enable_pattern_cache()

EMBEDDABLE = frozenset({"national_id", "phone", "email", "payment_card", "ip_address"})
"""Categories looked for inside free text."""
VALIDATED = frozenset(
    {"national_id", "phone", "email", "payment_card", "bank_account", "ip_address", "location", "birth_date"}
)
"""Categories whose name check is a real validator (the rest are plausibility checks)."""
_MAX_EMBEDDED = 8
"""Candidates checked per free-text value."""

CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_SEPARATORS = re.compile(r"[\s().\-]")

# --- national IDs -----------------------------------------------------------------------------------

_RIC = re.compile(r"\d{17}[\dX]")
_RIC_OLD = re.compile(r"\d{15}")
_SSN_DASHED = re.compile(r"\d{3}-\d{2}-\d{4}")
_OTHER_IDS = (
    es_dni, es_nie, it_codicefiscale, fr_nir, pl_pesel, nl_bsn, se_personnummer, dk_cpr, fi_hetu,
    be_nn, br_cpf, in_aadhaar, kr_rrn, tr_tckimlik, ca_sin,
)  # fmt: skip
"""National IDs with a checksum, accepted when the field is named for a national ID."""


def _cn_area(code: str) -> bool:
    """A county of python-stdnum's Chinese administrative division table, of any year (IDs keep the code
    of where they were issued, which may have been renamed since), or a county-level code of one of its
    prefectures (the table misses a few, such as 620201)."""
    areas = _cn_areas()
    return code in areas or (code[4:] != "00" and code[:4] + "00" in areas)


@cache
def _cn_areas() -> frozenset[str]:
    """The 6-digit codes of python-stdnum's Chinese administrative division table."""
    codes = set()
    for length, low, high, _, children in numdb.get("cn/loc").prefixes:
        for province in range(int(low), int(high) + 1):
            for size, first, last, props, _ in children:
                if "county" in props:
                    codes.update(
                        f"{province:0{length}d}{n:0{size}d}" for n in range(int(first), int(last) + 1)
                    )
    return frozenset(codes)


def _past_date(year: int, month: int, day: int) -> bool:
    """A real calendar date between 1900-01-01 and today."""
    try:
        return date(1900, 1, 1) <= date(year, month, day) <= date.today()
    except ValueError:
        return False


def is_cn_ric(value: str) -> bool:
    """An 18-character Chinese resident ID: check digit, birth date (1900..today), known area code."""
    number = value.upper()
    return (
        _RIC.fullmatch(number) is not None
        and ric.calc_check_digit(number) == number[-1]
        and _past_date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
        and _cn_area(number[:6])
    )


def _is_cn_ric_old(number: str) -> bool:
    """A first-generation 15-digit resident ID (no check digit): area code and 19yy birth date."""
    return (
        _RIC_OLD.fullmatch(number) is not None
        and _past_date(1900 + int(number[6:8]), int(number[8:10]), int(number[10:12]))
        and _cn_area(number[:6])
    )


def is_us_ssn(value: str) -> bool:
    """A US Social Security number that is not in an invalid or reserved range."""
    return us_ssn.is_valid(value)


def is_national_id(value: str) -> bool:
    """Any national ID with a verifiable structure (field named for one)."""
    number = _SEPARATORS.sub("", value).upper()
    if is_cn_ric(number) or _is_cn_ric_old(number) or is_us_ssn(number):
        return True
    return not is_phone(value) and any(module.is_valid(number) for module in _OTHER_IDS)


def _national_id_alone(value: str) -> bool:
    return is_cn_ric(value) or (_SSN_DASHED.fullmatch(value) is not None and is_us_ssn(value))


# --- phones -----------------------------------------------------------------------------------------

_PHONE = re.compile(r"\+?[\d\s().\-]{6,24}")
_US_SHAPE = re.compile(r"(?:1[\s.\-]?)?(?:\([2-9]\d{2}\)|[2-9]\d{2})[\s.\-]?[2-9]\d{2}[\s.\-]?\d{4}")
_CN_FIXED_SHAPE = re.compile(r"(?:\(0\d{2,3}\)|0\d{2,3})[\s\-]?[1-9]\d{6,7}")
_EXTENSION = re.compile(r"\s*(?:x|ext\.?|#|转)\s*\d{1,6}$", re.IGNORECASE)
_CN_MOBILE = re.compile(r"1[3-9]\d{9}")
_NON_DIGITS = re.compile(r"\D")


def _phone_region(text: str, digits: str, lenient: bool) -> str | None:
    """The region to parse a number in, "" for international, None if the value is not phone-shaped."""
    if text.startswith("+"):
        return ""
    if _CN_MOBILE.fullmatch(digits):
        return "CN"
    if lenient:
        return "CN" if digits[0] == "0" else "US"
    if text != digits:
        if _CN_FIXED_SHAPE.fullmatch(text):
            return "CN"
        if _US_SHAPE.fullmatch(text):
            return "US"
    return None


def is_phone(value: str, lenient: bool = False) -> bool:
    """A phone number valid in its numbering plan: international (+CC), Chinese or US.

    Alone, a bare digit run counts only as a Chinese mobile number; US numbers need their usual
    punctuation. `lenient` (field named for a phone) also takes bare numbers of a possible length."""
    text = _EXTENSION.sub("", value)
    if not _PHONE.fullmatch(text) or _IPV4.fullmatch(text) or _SSN_DASHED.fullmatch(text):
        return False
    if text.startswith("00"):
        text = "+" + text[2:]
    digits = _NON_DIGITS.sub("", text)
    region = _phone_region(text, digits, lenient) if 7 <= len(digits) <= 15 else None
    if region is None:
        return False
    try:
        number = phonenumbers.parse(text, region or None)
    except phonenumbers.NumberParseException:
        return False
    if lenient and phonenumbers.is_possible_number(number):  # the cheaper check first
        return True
    return phonenumbers.is_valid_number(number)


# --- e-mail, IP, coordinates, dates --------------------------------------------------------------------

_EMAIL = re.compile(
    r"[A-Za-z0-9](?:[A-Za-z0-9._%+-]{0,62}[A-Za-z0-9_%+-])?@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+([A-Za-z]{2,24})"
)
_FILE_SUFFIXES = frozenset({"png", "jpg", "jpeg", "gif", "svg", "webp", "js", "css", "json", "html", "txt"})


def is_email(value: str) -> bool:
    """An e-mail address (strict syntax; "icon@2x.png" is a file name)."""
    match = _EMAIL.fullmatch(value)
    return match is not None and ".." not in value and match.group(1).lower() not in _FILE_SUFFIXES


_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")
_IPV6 = re.compile(r"[0-9A-Fa-f:.]{2,45}")


def is_ip(value: str, lenient: bool = False) -> bool:
    """An IPv4 or IPv6 address. Alone, dotted quads of single digits ("1.2.0.3") read as versions."""
    if _IPV4.fullmatch(value):
        octets = [int(part) for part in value.split(".")]
        return any(octets) and (lenient or max(octets) >= 10)
    if value.count(":") < 2 or not _IPV6.fullmatch(value):
        return False
    try:
        return not ipaddress.IPv6Address(value).is_unspecified
    except ValueError:
        return False


COORDINATE = r"(-?\d{1,3}\.(\d+))"
_PAIR = re.compile(rf"[(\[]?\s*{COORDINATE}\s*[,;\s]\s*{COORDINATE}\s*[)\]]?")
_SINGLE = re.compile(COORDINATE)


def is_gps_pair(value: str, decimals: int = 4) -> bool:
    """A "lat,lng" (or "lng,lat") pair within range, each with at least `decimals` decimals."""
    match = _PAIR.fullmatch(value)
    if not match or min(len(match.group(2)), len(match.group(4))) < decimals:
        return False
    a, b = abs(float(match.group(1))), abs(float(match.group(3)))
    return (a or b) != 0 and ((a <= 90 and b <= 180) or (a <= 180 and b <= 90))


def is_coordinate(value: str) -> bool:
    """A latitude, a longitude (at least 3 decimals) or a pair (field named for a location)."""
    match = _SINGLE.fullmatch(value)
    if match:
        return len(match.group(2)) >= 3 and 0 < abs(float(match.group(1))) <= 180
    return is_gps_pair(value, decimals=3)


_DATE_YMD = re.compile(
    r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?"
    r"(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
)
_DATE_COMPACT = re.compile(r"(\d{4})(\d{2})(\d{2})")
_DATE_DMY = re.compile(r"(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})")


def _date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


@lru_cache(maxsize=1 << 16)
def date_readings(value: str) -> tuple[date, ...]:
    """The dates `value` can be read as (Y-M-D, YYYYMMDD, 1990年1月2日; D/M/Y first, then M/D/Y)."""
    match = _DATE_YMD.fullmatch(value) or _DATE_COMPACT.fullmatch(value)
    if match:
        parts = [(int(match.group(1)), int(match.group(2)), int(match.group(3)))]
    elif match := _DATE_DMY.fullmatch(value):
        first, second, year = (int(g) for g in match.groups())
        parts = [(year, second, first), (year, first, second)]
    else:
        return ()
    return tuple(dict.fromkeys(d for p in parts if (d := _date(*p)) is not None))


def is_birth_date(value: str) -> bool:
    """A calendar date from 1900 to today (Y-M-D, YYYYMMDD, D/M/Y or M/D/Y, 1990年1月2日)."""
    return any(date(1900, 1, 1) <= d <= date.today() for d in date_readings(value))


# --- cards and accounts ---------------------------------------------------------------------------------

_CARD = re.compile(r"\d{4}(?:[ -]?\d{2,6}){1,4}")
_IIN: tuple[tuple[str, str, frozenset[int]], ...] = (
    ("4", "4", frozenset({13, 16, 19})),  # Visa
    ("34", "34", frozenset({15})),  # American Express
    ("37", "37", frozenset({15})),
    ("51", "55", frozenset({16})),  # Mastercard
    ("2221", "2720", frozenset({16})),
    ("2200", "2204", frozenset({16})),  # Mir
    ("300", "305", frozenset(range(14, 20))),  # Diners Club
    ("36", "36", frozenset(range(14, 20))),
    ("38", "39", frozenset(range(14, 20))),
    ("35", "35", frozenset(range(16, 20))),  # JCB
    ("2131", "2131", frozenset({15})),
    ("1800", "1800", frozenset({15})),
    ("50", "50", frozenset(range(12, 20))),  # Maestro
    ("56", "58", frozenset(range(12, 20))),
    ("6304", "6304", frozenset(range(12, 16))),
    ("6759", "6763", frozenset(range(12, 16))),
    ("6390", "6390", frozenset(range(12, 16))),
    ("0604", "0604", frozenset(range(12, 20))),  # Maestro UK (legacy)
    ("6", "6", frozenset(range(16, 20))),  # Discover, UnionPay, Maestro, RuPay
    ("81", "82", frozenset({16})),  # UnionPay, RuPay
)
"""Issuer prefixes (inclusive ranges of equal length) and the card lengths they issue."""


def _issuer_plausible(digits: str) -> bool:
    return any(low <= digits[: len(low)] <= high and len(digits) in lengths for low, high, lengths in _IIN)


def is_payment_card(value: str) -> bool:
    """A card number: 12-19 digits, a known issuer prefix for its length, a valid Luhn check digit."""
    if not _CARD.fullmatch(value):
        return False
    digits = value.replace(" ", "").replace("-", "")
    return _issuer_plausible(digits) and luhn.checksum(digits) == 0


_IBAN = re.compile(r"[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}")


def is_iban(value: str) -> bool:
    """An IBAN: country format and mod-97 check."""
    number = value.upper()
    return _IBAN.fullmatch(number) is not None and iban.is_valid(number)


_ACCOUNT = re.compile(r"\d[\d -]{6,32}\d")


def is_bank_account(value: str) -> bool:
    """An IBAN, or a run of 8 to 30 digits (field named for a bank account)."""
    return is_iban(value) or (
        _ACCOUNT.fullmatch(value) is not None and 8 <= len(value.replace(" ", "").replace("-", "")) <= 30
    )


_PASSPORT = re.compile(r"[A-Z]{0,2}\d{6,9}[A-Z]?")


def is_passport(value: str) -> bool:
    """A passport number: up to two letters then 6-9 digits (CN E12345678, US 9 digits, ...)."""
    number = value.upper().replace(" ", "")
    return _PASSPORT.fullmatch(number) is not None and 7 <= len(number) <= 11


# --- names, places and other plausibility checks ------------------------------------------------------

_CJK_NAME = re.compile(r"[\u3400-\u9fff]{1,4}|[\u3400-\u9fff]{1,6}[·•][\u3400-\u9fff]{1,8}")
_LATIN_NAME = re.compile(
    r"(?:(?:Mr|Mrs|Ms|Miss|Dr|Prof)\.?\s+)?[A-Z][A-Za-z'’\-]*\.?(?:\s+[A-Z][A-Za-z'’\-]*\.?){0,4}"
    r"(?:,?\s+(?:Jr|Sr|II|III|IV|MD|DDS|PhD|DVM)\.?)?"
)


def is_person_name(value: str) -> bool:
    """A person's name: a Chinese name starting with a known surname, or capitalised Latin words."""
    if CJK.match(value):
        if not _CJK_NAME.fullmatch(value):
            return False
        surnames = lexicon().surnames
        return value[0] in surnames or value[:2] in surnames or "·" in value or "•" in value
    return len(value) <= 64 and _LATIN_NAME.fullmatch(value) is not None and any(c.islower() for c in value)


_CJK_ADDRESS = re.compile(r"[省市区县路街道号镇乡村巷弄楼室栋座]")
_LATIN_WORD = re.compile(r"[A-Za-z]{2,}")


def is_address(value: str) -> bool:
    """A postal address: Chinese with administrative or street words, or Latin words with a number."""
    if CJK.match(value):
        return 5 <= len(value) <= 300 and _CJK_ADDRESS.search(value) is not None
    return (
        10 <= len(value) <= 300
        and " " in value
        and "@" not in value
        and any(c.isdigit() for c in value)
        and len(_LATIN_WORD.findall(value)) >= 2
    )


_LATIN_PLACE = re.compile(r"[A-Z][A-Za-z .'\-]{1,40}(?:,\s*[A-Z][A-Za-z .]{1,30})?")


def is_place(value: str) -> bool:
    """A place name: Chinese with an administrative suffix or a province name, or capitalised words."""
    if CJK.match(value):
        table = lexicon()
        return 2 <= len(value) <= 40 and (
            any(c in table.place_suffixes for c in value) or value.startswith(table.provinces)
        )
    return _LATIN_PLACE.fullmatch(value) is not None


_GENDERS = frozenset(
    ("男", "女", "男性", "女性", "未知", "m", "f", "u", "x", "male", "female", "man", "woman")
)
_GENDER_CODES = frozenset(("0", "1", "2", "9"))


def is_gender(value: str) -> bool:
    """A gender as databases store it: 男/女, M/F, male/female, or the GB/T 2261 codes 0/1/2/9."""
    return value.lower() in _GENDERS or value in _GENDER_CODES


_AGE = re.compile(r"(\d{1,3})(?:岁|周岁| years?)?")


def is_age(value: str) -> bool:
    """An age in years, 0 to 120."""
    match = _AGE.fullmatch(value)
    return match is not None and int(match.group(1)) <= 120


CRYPT = re.compile(
    r"\$(?:2[abxy]|argon2(?:id|i|d)|pbkdf2(?:-sha\d+)?|scrypt|[156y])\$\S{8,}"
    r"|(?:pbkdf2_sha\d+|bcrypt_sha256|sha1|md5)\$\d*\$?\S{8,}|\{S?SHA(?:256|512)?\}\S{8,}"
)
HEX_HASH = re.compile(r"[0-9a-fA-F]{32}|[0-9a-fA-F]{40}|[0-9a-fA-F]{64}|[0-9a-fA-F]{128}")
_NOT_PASSWORDS = frozenset({"null", "none", "nil", "true", "false", "n/a", "password", "default"})


def is_password(value: str) -> bool:
    """A stored password: a password hash, or a short string without spaces that is not masked out."""
    if CRYPT.fullmatch(value) or HEX_HASH.fullmatch(value):
        return True
    return (
        4 <= len(value) <= 128
        and not any(c.isspace() for c in value)
        and set(value) != {"*"}
        and value.lower() not in _NOT_PASSWORDS
    )


_KNOWN_SECRET = re.compile(
    r"(?:AKIA|ASIA)[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{36,}|github_pat_\w{22,}|xox[abprs]-[A-Za-z0-9-]{10,}"
    r"|(?:sk|rk|pk)_live_[A-Za-z0-9]{16,}|sk-[A-Za-z0-9_-]{32,}|AIza[0-9A-Za-z_-]{35}|glpat-[A-Za-z0-9_-]{20,}"
    r"|eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"
    r"|-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----[\s\S]*"
)


def is_secret(value: str) -> bool:
    """A credential: a known key format, or a long random-looking string without spaces."""
    if _KNOWN_SECRET.fullmatch(value):
        return True
    token = value.removeprefix("Bearer ").removeprefix("bearer ")
    if not 16 <= len(token) <= 4096 or any(c.isspace() for c in token) or len(set(token)) < 8:
        return False
    classes = sum(
        (any(c.islower() for c in token), any(c.isupper() for c in token), any(c.isdigit() for c in token))
    )
    return classes >= 2


def is_case_text(value: str) -> bool:
    """Something written about a case: a case number, a type of offence, a description."""
    return 2 <= len(value) <= 4096 and any(c.isalpha() for c in value)


NAME_CHECKS: dict[str, Callable[[str], bool]] = {
    "name": is_person_name,
    "national_id": is_national_id,
    "phone": lambda v: is_phone(v, lenient=True),
    "email": is_email,
    "address": is_address,
    "birth_date": is_birth_date,
    "age": is_age,
    "birth_place": is_place,
    "gender": is_gender,
    "location": is_coordinate,
    "payment_card": is_payment_card,
    "bank_account": is_bank_account,
    "passport": is_passport,
    "password": is_password,
    "secret": is_secret,
    "ip_address": lambda v: is_ip(v, lenient=True),
    "case_record": is_case_text,
}
"""Category -> does a value agree with a field named for that category."""


# --- what a value proves alone -------------------------------------------------------------------------


def _classify_number(value: str) -> str | None:
    """A value that starts like a number: resident ID, SSN, IP, coordinates, phone or card."""
    if _national_id_alone(value):
        return "national_id"
    if is_ip(value):
        return "ip_address"
    if ("," in value or " " in value) and is_gps_pair(value):
        return "location"
    if is_phone(value):
        return "phone"
    if is_payment_card(value):
        return "payment_card"
    return None


def classify(value: str) -> str | None:
    """The category `value` proves on its own, or None: checksums and strict formats only."""
    if len(value) < 6:
        return None
    first = value[0]
    if "@" in value:
        return "email" if is_email(value) else None
    if first.isdigit() or first in "+(-[":
        return _classify_number(value)
    if first == "$" or first == "{" or "$" in value[:16]:
        return "password" if CRYPT.fullmatch(value) else None
    if first.isupper() and len(value) >= 15 and value[2:4].isdigit() and is_iban(value):
        return "bank_account"
    if _KNOWN_SECRET.fullmatch(value):
        return "secret"
    if ":" in value and is_ip(value):
        return "ip_address"
    return None


_EMBEDDED_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}"
)
_EMBEDDED_NUMBER = re.compile(
    r"(?=[\d+(])(?<![A-Za-z0-9._/=-])(?:"
    r"\d{17}[\dXx]"
    r"|\d{4}(?:[ -]\d{4}){2,3}(?:[ -]\d{1,3})?"
    r"|\+?(?:\d{1,3}[ -])?\(?\d{2,4}\)?[ -.]?\d{3,4}[ -.]?\d{4}"
    r"|\d{3}-\d{2}-\d{4}"
    r"|\d{1,3}(?:\.\d{1,3}){3}"
    r"|\+?\d{7,19}"
    r")(?![A-Za-z0-9_/=-]|\.\d)"
)


def embedded(text: str) -> Iterator[tuple[str, str]]:
    """(category, matched text) for phones, e-mails, IDs, cards and IPs written inside free text."""
    matches = _EMBEDDED_EMAIL.finditer(text) if "@" in text else iter(())
    for count, match in enumerate(chain(matches, _EMBEDDED_NUMBER.finditer(text))):
        if count == _MAX_EMBEDDED:
            return
        found = match.group()
        category = classify(found)
        if category in EMBEDDABLE:
            yield category, found
