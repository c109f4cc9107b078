"""Whether a leak sample holds together: what each column holds and how well it validates, whether columns
that describe the same person agree, duplicates, date ranges, and a verdict with its reasons. Pure, no I/O.

A column's category comes from `pii.assess_field` (its name and a sample of its values); its values are
validated with `validators.NAME_CHECKS`. A Chinese resident ID (18 characters, valid check digit, known
area, past birth date) states a birth date (digits 7-14), a gender (17th digit odd: male) and an area (first
6 digits, named down to the county in python-stdnum's table, every year's names); rows holding one are
compared with the other columns of the row.

A check fails when its share of mismatches exceeds its limit:

- validity (5%): a non-empty value of a validated category (national ID, phone, e-mail, card, account,
  IP, coordinates, birth date) failing its validator;
- ID birth date (5%): a birth date none of whose readings (D/M/Y and M/D/Y both tried) is the ID's;
- ID gender (5%): a gender (男/女, M/F, male/female, 1/2 ...) other than the ID's;
- age (5%): an age more than 1 year off the ID's at the reference date, the file's own date (the latest
  date of its other date columns, if none of them lies in the future) or today, whichever fits better;
- ID area vs birthplace (20%): a birthplace naming neither the ID's province, prefecture nor county;
- ID area vs address (90%): the same for an address (people move; random IDs would name ~3%);
- duplicate rows (1%): a row equal to an earlier one;
- duplicate IDs (1%): a row whose resident ID is in an earlier, different row.

A check with fewer than `MIN_COMPARED` values to compare is "too few" and stays out of the verdict. Verdict:
"inconsistent" when a check fails; "consistent" when none fails and at least one check other than the
duplicate checks passed; "insufficient data" otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache

from stdnum import numdb

from leaksonar.assess.lexicon import name_hint
from leaksonar.assess.pii import assess_field
from leaksonar.assess.validators import (
    NAME_CHECKS,
    VALIDATED,
    date_readings,
    is_age,
    is_cn_ric,
)

VALID_LIMIT = 0.05
"""Share of a validated column's values that may fail their validator."""
AGREE_LIMIT = 0.05
"""Share of rows whose birth date, gender or age may disagree with the resident ID."""
BIRTH_PLACE_LIMIT = 0.2
"""Share of birthplaces that may name none of the ID's areas."""
ADDRESS_LIMIT = 0.9
"""Share of addresses that may name none of the ID's areas."""
DUPLICATE_LIMIT = 0.01
"""Share of rows that may repeat an earlier row, or an earlier row's resident ID."""
AGE_TOLERANCE = 1
"""Years an age may differ from the one the ID's birth date gives."""
MIN_COMPARED = 20
"""Fewest values a check needs to count."""
DATE_SHARE = 0.9
"""Share of a column's sampled values that must read as dates for it to be a date column."""
CATEGORY_SAMPLE = 200
"""Values per column (spread over the file) looked at to tell its category."""

Cell = str | None
"""A cell's text, None when empty."""

_DUPLICATE_KINDS = frozenset({"duplicate_rows", "duplicate_ids"})
_MALE = frozenset({"男", "男性", "m", "male", "man", "1"})
_FEMALE = frozenset({"女", "女性", "f", "female", "woman", "2"})
_GENERIC_AREAS = frozenset({"市辖区", "县", "郊区", "城区", "矿区"})
_AREA_SUFFIX = re.compile(r"(?:特别行政区|特別行政區|地区|林区|新区|[省市区县盟旗])$")
_DIGITS = re.compile(r"\d+")


@dataclass(frozen=True, slots=True)
class DateRange:
    """The dates of a date column."""

    first: date
    last: date
    future: int
    """Dates after today."""


@dataclass(frozen=True, slots=True)
class ColumnReport:
    """What one column holds."""

    name: str
    category: str | None
    filled: int
    """Non-empty values."""
    empty: int
    distinct: int
    """Distinct non-empty values."""
    valid: int | None
    """Non-empty values passing the category's validator (validated categories only)."""
    example: str | None
    """One masked value of the category."""
    dates: DateRange | None


@dataclass(frozen=True, slots=True)
class Check:
    """One comparison: how many values were compared and how many did not fit."""

    kind: str
    label: str
    claim: tuple[str, str]
    """The sentence before and after its figures."""
    columns: tuple[str, ...]
    compared: int
    mismatches: int
    limit: float
    unit: str = "rows"

    @property
    def status(self) -> str:
        """Pass, fail, or too few values to tell."""
        if self.compared < MIN_COMPARED:
            return "too few"
        return "fail" if self.mismatches > self.limit * self.compared else "pass"

    @property
    def rate(self) -> float:
        """Share of the compared values that did not fit."""
        return self.mismatches / self.compared if self.compared else 0.0

    def sentence(self) -> str:
        """``ID birth date disagrees with birth_date in 412 of 2,000 rows (20.6%; limit 5%)``."""
        figures = (
            f"{self.mismatches:,} of {self.compared:,} {self.unit} ({self.rate:.1%}; limit {self.limit:.0%})"
        )
        return f"{self.claim[0]}{figures}{self.claim[1]}"


@dataclass(frozen=True, slots=True)
class Report:
    """Everything `verify` says about a sample."""

    rows: int
    columns: tuple[ColumnReport, ...]
    checks: tuple[Check, ...]
    verdict: str
    """One of "consistent", "inconsistent", "insufficient data"."""
    reasons: tuple[str, ...]
    notes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ResidentId:
    """What a Chinese resident ID states."""

    birth: date
    male: bool
    area: str


def resident_id(value: str) -> ResidentId | None:
    """The birth date, gender and area of a valid 18-character Chinese resident ID, else None."""
    number = value.upper()
    if not is_cn_ric(number):
        return None
    birth = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    return ResidentId(birth, int(number[16]) % 2 == 1, number[:6])


def gender_of(value: str) -> bool | None:
    """True for male, False for female, None when unknown or unreadable."""
    text = value.lower()
    return True if text in _MALE else False if text in _FEMALE else None


def age_of(value: str) -> int | None:
    """An age in years ("45", "45岁"), None when not an age."""
    match = _DIGITS.match(value)
    return int(match.group()) if match and is_age(value) else None


def age_at(birth: date, day: date) -> int:
    """Whole years from `birth` to `day`."""
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def _short_name(name: str) -> str | None:
    """The name of a division without its kind: 广东省 -> 广东, 昌吉回族自治州 -> 昌吉, 市辖区 -> None."""
    if name in _GENERIC_AREAS:
        return None
    core = name[:2] if "自治" in name else _AREA_SUFFIX.sub("", name)
    return core if len(core) >= 2 else None


@cache
def area_names(code: str) -> frozenset[str]:
    """Short names of the province, prefecture and county of a 6-digit area code, of every year."""
    table = numdb.get("cn/loc")
    names: set[str] = set()
    for prefix in (code[:2] + "0000", code[:4] + "00", code):
        for _, props in table.info(prefix):
            for name in ",".join(props.values()).split(","):
                short = _short_name(name.rpartition("]")[2])
                if short:
                    names.add(short)
    return frozenset(names)


# --- columns ---------------------------------------------------------------------------------------------


def _spread(values: Sequence[str], size: int) -> Sequence[str]:
    """At most `size` values, evenly spread."""
    return values[:: max(1, len(values) // size)][:size]


def _category(name: str, values: Sequence[str]) -> tuple[str | None, str | None]:
    """The column's category (the first its name says, if its values agree) and a masked example."""
    field = assess_field(name, _spread(values, CATEGORY_SAMPLE))
    if not field.matches:
        return None, None
    named = [c for c in name_hint(name).categories if c in field.matches]
    category = named[0] if named else max(field.matches, key=field.matches.__getitem__)
    return category, field.examples[category]


def _valid(category: str | None, values: Sequence[str]) -> int | None:
    """Values passing the category's validator, None for categories without one."""
    if category not in VALIDATED:
        return None
    check = NAME_CHECKS[category]
    passed = {value: check(value) for value in set(values)}
    return sum(passed[value] for value in values)


def _date_range(values: Sequence[str], today: date) -> DateRange | None:
    """First and last date of a column whose values read as dates, else None."""
    sample = _spread(values, CATEGORY_SAMPLE)
    if not sample or sum(bool(date_readings(v)) for v in sample) < DATE_SHARE * len(sample):
        return None
    dates = [readings[0] for value in values if (readings := date_readings(value))]
    return DateRange(min(dates), max(dates), sum(d > today for d in dates))


def column_report(name: str, cells: Sequence[Cell], today: date) -> ColumnReport:
    """Category, fill, distinctness, validity and dates of one column."""
    values = [cell for cell in cells if cell is not None]
    category, example = _category(name, values) if values else (None, None)
    return ColumnReport(
        name,
        category,
        len(values),
        len(cells) - len(values),
        len(set(values)),
        _valid(category, values),
        example,
        _date_range(values, today) if values else None,
    )


# --- checks ------------------------------------------------------------------------------------------------


def _validity(column: ColumnReport) -> Check:
    return Check(
        "validity",
        f"{column.category} check: {column.name}",
        ("", f" in {column.name} fail the {column.category} check"),
        (column.name,),
        column.filled,
        column.filled - (column.valid or 0),
        VALID_LIMIT,
        unit="values",
    )


def _duplicate_rows(rows: Sequence[tuple[Cell, ...]]) -> Check:
    seen: set[tuple[Cell, ...]] = set()
    repeats = 0
    for row in rows:
        repeats += row in seen
        seen.add(row)
    return Check(
        "duplicate_rows",
        "duplicate rows",
        ("", " repeat an earlier row"),
        (),
        len(rows),
        repeats,
        DUPLICATE_LIMIT,
    )


def _duplicate_ids(name: str, ids: Sequence[Cell], rows: Sequence[tuple[Cell, ...]]) -> Check:
    """Rows whose ID is in an earlier row that differs from them (exact repeats are duplicate rows)."""
    first: dict[str, tuple[Cell, ...]] = {}
    compared = repeats = 0
    for value, row in zip(ids, rows, strict=True):
        if value is not None:
            compared += 1
            repeats += first.setdefault(value, row) != row
    return Check(
        "duplicate_ids",
        f"duplicate IDs: {name}",
        ("", f" hold an ID of {name} already in another row"),
        (name,),
        compared,
        repeats,
        DUPLICATE_LIMIT,
    )


Compare = Callable[[ResidentId, str], bool | None]
"""Does a cell agree with the row's resident ID (None: cannot tell)."""


@dataclass(frozen=True, slots=True)
class _Against:
    """One comparison of a column with the resident ID."""

    kind: str
    label: str
    claim: tuple[str, str]
    compare: Compare
    limit: float


def _agreement(
    against: _Against, column: str, ids: Sequence[ResidentId | None], cells: Sequence[Cell]
) -> Check:
    compared = mismatches = 0
    for resident, cell in zip(ids, cells, strict=True):
        if resident is not None and cell is not None:
            agrees = against.compare(resident, cell)
            if agrees is not None:
                compared += 1
                mismatches += not agrees
    return Check(against.kind, against.label, against.claim, (column,), compared, mismatches, against.limit)


def _same_birth(resident: ResidentId, cell: str) -> bool | None:
    readings = date_readings(cell)
    return resident.birth in readings if readings else None


def _same_gender(resident: ResidentId, cell: str) -> bool | None:
    male = gender_of(cell)
    return None if male is None else male == resident.male


def _names_area(resident: ResidentId, cell: str) -> bool:
    return any(name in cell for name in area_names(resident.area))


def _age_fits(day: date) -> Compare:
    def fits(resident: ResidentId, cell: str) -> bool | None:
        age = age_of(cell)
        return None if age is None else abs(age - age_at(resident.birth, day)) <= AGE_TOLERANCE

    return fits


def _file_date(columns: Sequence[ColumnReport], today: date) -> tuple[date, str] | None:
    """The file's own date: the latest date of its date columns other than birth dates, none in the future."""
    found = [
        (c.dates.last, f"latest date in {c.name}")
        for c in columns
        if c.dates is not None and c.category != "birth_date" and c.dates.last <= today
    ]
    return max(found) if found else None


def _against(category: str | None, name: str) -> _Against | None:
    """How a column of `category` named `name` is compared with the resident ID (age aside)."""
    if category == "birth_date":
        claim = (f"ID birth date disagrees with {name} in ", "")
        return _Against(category, f"ID birth date vs {name}", claim, _same_birth, AGREE_LIMIT)
    if category == "gender":
        claim = (f"ID gender digit disagrees with {name} in ", "")
        return _Against(category, f"ID gender vs {name}", claim, _same_gender, AGREE_LIMIT)
    if category in ("birth_place", "address"):
        limit = BIRTH_PLACE_LIMIT if category == "birth_place" else ADDRESS_LIMIT
        claim = (f"{name} does not name the ID's area in ", "")
        return _Against(category, f"ID area vs {name}", claim, _names_area, limit)
    return None


def _age_against(name: str, day: date, source: str) -> _Against:
    claim = (
        f"age in {name} is off the ID birth date by over {AGE_TOLERANCE} year at {day} ({source}) in ",
        "",
    )
    return _Against("age", f"age vs ID birth date: {name}", claim, _age_fits(day), AGREE_LIMIT)


def _id_checks(
    table: Mapping[str, Sequence[Cell]],
    columns: Sequence[ColumnReport],
    ids: Sequence[ResidentId | None],
    today: date,
) -> list[Check]:
    """Birth date, gender, age and area columns against the resident IDs; ages at the reference date
    (the file's own or today) that fits them best."""
    references = [found] if (found := _file_date(columns, today)) else []
    references.append((today, "today"))
    checks = []
    for column in columns:
        cells = table[column.name]
        against = _against(column.category, column.name)
        if against is not None:
            checks.append(_agreement(against, column.name, ids, cells))
        elif column.category == "age":
            ages = [
                _agreement(_age_against(column.name, *ref), column.name, ids, cells) for ref in references
            ]
            checks.append(min(ages, key=lambda check: check.mismatches))
    return checks


def _id_column(
    table: Mapping[str, Sequence[Cell]], columns: Sequence[ColumnReport]
) -> tuple[str, list[ResidentId | None]] | None:
    """The national ID column with the most valid Chinese resident IDs, and its IDs read."""
    best: tuple[int, str, list[ResidentId | None]] | None = None
    for column in columns:
        if column.category == "national_id":
            ids = [resident_id(cell) if cell is not None else None for cell in table[column.name]]
            found = sum(resident is not None for resident in ids)
            if found and (best is None or found > best[0]):
                best = (found, column.name, ids)
    return (best[1], best[2]) if best else None


# --- verdict ------------------------------------------------------------------------------------------------


def _verdict(checks: Sequence[Check], rows: int) -> tuple[str, list[str]]:
    failed = [c.sentence() for c in checks if c.status == "fail"]
    if failed:
        return "inconsistent", failed
    if any(c.status == "pass" and c.kind not in _DUPLICATE_KINDS for c in checks):
        return "consistent", [c.sentence() for c in checks if c.status == "pass"]
    if rows < MIN_COMPARED:
        return "insufficient data", [f"only {rows:,} rows; a check needs at least {MIN_COMPARED}"]
    if all(c.kind in _DUPLICATE_KINDS for c in checks):
        return "insufficient data", ["no column holds validated data (IDs, phones, e-mails, dates ...)"]
    return "insufficient data", [f"no check had {MIN_COMPARED} values to compare"]


def _notes(columns: Sequence[ColumnReport], checks: Sequence[Check], has_ids: bool, today: date) -> list[str]:
    """Future dates, checks with too few values, cross-checks not run."""
    notes = [
        f"{c.dates.future:,} of the dates in {c.name} lie after today ({today})"
        for c in columns
        if c.dates is not None and c.dates.future
    ]
    notes += [f"{c.label}: only {c.compared:,} values to compare" for c in checks if c.status == "too few"]
    personal = {"birth_date", "gender", "age", "birth_place", "address"}
    if not has_ids and any(c.category in personal for c in columns):
        notes.append("no Chinese resident ID column: birth dates, genders, ages and places not cross-checked")
    return notes


def check_table(table: Mapping[str, Sequence[Cell]], today: date) -> Report:
    """The report on a sample: `table` maps column names to cells (the same number in each column)."""
    rows = list(zip(*table.values(), strict=True))
    columns = [column_report(name, cells, today) for name, cells in table.items()]
    checks = [_validity(c) for c in columns if c.valid is not None]
    checks.append(_duplicate_rows(rows))
    found = _id_column(table, columns)
    if found is not None:
        name, ids = found
        checks.append(_duplicate_ids(name, table[name], rows))
        checks += _id_checks(table, columns, ids, today)
    verdict, reasons = _verdict(checks, len(rows))
    notes = _notes(columns, checks, found is not None, today)
    return Report(len(rows), tuple(columns), tuple(checks), verdict, tuple(reasons), tuple(notes))
