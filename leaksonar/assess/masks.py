"""Masks that show a personal-data value without giving it away (what examples in findings and letters
carry). Pure, no I/O."""

from __future__ import annotations

import re
from collections.abc import Callable

from leaksonar.assess.validators import CJK, COORDINATE, CRYPT, HEX_HASH, is_gender


def _keep(value: str, head: int, tail: int) -> str:
    """`value` with every letter or digit starred except the first `head` and last `tail` of them."""
    positions = [i for i, c in enumerate(value) if c.isalnum()]
    hidden = set(positions[head : len(positions) - tail] if tail else positions[head:])
    if not hidden and positions:
        hidden = set(positions)
    return "".join("*" if i in hidden else c for i, c in enumerate(value))


def _mask_id(value: str) -> str:
    alnum = sum(c.isalnum() for c in value)
    return _keep(value, 4, 4) if alnum >= 15 else _keep(value, 0, 4 if alnum >= 9 else 2)


def _mask_phone(value: str) -> str:
    digits = sum(c.isdigit() for c in value)
    return _keep(value, 3, 4) if digits >= 11 else _keep(value, 0, 4 if digits >= 9 else 2)


def _mask_email(value: str) -> str:
    local, _, domain = value.rpartition("@")
    return f"{local[:1]}***@{domain}"


def _mask_card(value: str) -> str:
    return "**** **** **** " + "".join(c for c in value if c.isdigit())[-4:]


def _mask_ip(value: str) -> str:
    if "." in value and ":" not in value:
        return ".".join(value.split(".")[:2]) + ".*.*"
    return ":".join(value.split(":")[:2]) + ":****"


def _mask_location(value: str) -> str:
    return ",".join(f"{float(number):.1f}" for number, _ in re.findall(COORDINATE, value)) or "*"


def _mask_birth_date(value: str) -> str:
    year = re.search(r"(?:19|20)\d{2}", value)
    return f"{year.group()}-**-**" if year else "****-**-**"


def _mask_name(value: str) -> str:
    if CJK.match(value):
        return value[0] + "*" * (len(value) - 1) if len(value) > 1 else "*"
    return " ".join(word[0] + "***" for word in value.split())


def _mask_address(value: str) -> str:
    if CJK.match(value):
        return value[: min(6, len(value) // 3)] + "***"
    region = value.rpartition(",")[2].strip()
    return f"***, {region}" if region and len(region) <= 12 and region != value else "***"


def _mask_password(value: str) -> str:
    if CRYPT.fullmatch(value):
        return value[: value.find("$", 1) + 1] + "****" if value.startswith("$") else value[:6] + "****"
    hashes = {32: "md5", 40: "sha1", 64: "sha256", 128: "sha512"}
    return f"****({hashes[len(value)]})" if HEX_HASH.fullmatch(value) else "********"


def _mask_prefix(size: int) -> Callable[[str], str]:
    return lambda value: value[:size] + "***" if len(value) > 2 * size else "***"


_MASKS: dict[str, Callable[[str], str]] = {
    "name": _mask_name,
    "national_id": _mask_id,
    "phone": _mask_phone,
    "email": _mask_email,
    "address": _mask_address,
    "birth_date": _mask_birth_date,
    "age": lambda v: v[0] + "*" if len(v) > 1 and v[:2].isdigit() else "*",
    "birth_place": _mask_prefix(2),
    "gender": lambda v: v if is_gender(v) else "*",
    "location": _mask_location,
    "payment_card": _mask_card,
    "bank_account": lambda v: _keep(v, 2 if v[:1].isalpha() else 0, 4),
    "passport": lambda v: _keep(v, 1, 2),
    "password": _mask_password,
    "secret": _mask_prefix(4),
    "ip_address": _mask_ip,
    "case_record": _mask_prefix(2),
}


def mask(category: str, value: str) -> str:
    """`value` shown safely for `category`: ``3101**********123X``, ``138****5678``, ``j***@example.com``,
    ``**** **** **** 1234``. Gender is shown as is; nothing else is enough to identify anyone."""
    return _MASKS.get(category, lambda _: "***")(value.strip())
