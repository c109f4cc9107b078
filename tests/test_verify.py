"""`leaksonar verify`: a Faker-made sample holds together in every format, a tampered copy does not and each
problem is named, no raw ID or phone number is ever printed, and bad input is one line with exit code 2."""

from __future__ import annotations

import csv
import gzip
import json
import random
import subprocess
import sys
import zlib
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from stdnum import numdb
from stdnum.cn import ric

from leaksonar.lab.data import Synth

ROWS = 300
Row = dict[str, Any]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "leaksonar", "verify", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def verify_json(path: Path, *args: str) -> dict[str, Any]:
    result = run(str(path), "--json", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _latest_name(props: dict[str, str], key: str) -> str:
    """The current name in a python-stdnum area entry ("[1983-]秦皇岛市" -> "秦皇岛市")."""
    return props.get(key, "").split(",")[-1].rpartition("]")[2]


def place(code: str) -> str:
    """Province and prefecture of a resident ID's area code."""
    (_, province), *prefecture = numdb.get("cn/loc").info(code[:4] + "00")
    return _latest_name(province, "province") + (
        _latest_name(prefecture[0][1], "county") if prefecture else ""
    )


def age(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def people(n: int = ROWS, seed: int = 4, day: date | None = None) -> list[Row]:
    """Consistent people: the lab's IDs (birth date and gender agree), places from the ID's area code."""
    s = Synth(seed)
    rows = []
    for p in s.people(n):
        home = place(p.national_id[:6])
        rows.append(
            {
                "姓名": p.name,
                "身份证号": p.national_id,
                "性别": p.gender,
                "出生日期": p.birth_date.isoformat(),
                "年龄": age(p.birth_date, day or date.today()),
                "籍贯": home,
                "住址": home + s.zh.street_address(),
                "手机号": p.phone,
                "email": p.email,
            }
        )
    return rows


def write_csv(rows: list[Row], path: Path, opener: Callable[..., Any] = open) -> Path:
    with opener(path, "wt", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_json(rows: list[Row], path: Path) -> Path:
    for row in rows:
        row["性别"] = {"男": "male", "女": "female"}[row["性别"]]
    path.write_text(json.dumps({"count": len(rows), "records": rows}, ensure_ascii=False, indent=1), "utf-8")
    return path


def write_jsonl(rows: list[Row], path: Path) -> Path:
    lines = [json.dumps({**row, "性别": 1 if row["性别"] == "男" else 2}, ensure_ascii=False) for row in rows]
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path


def write_csv_gz(rows: list[Row], path: Path) -> Path:
    for row in rows:
        row["性别"] = "M" if row["性别"] == "男" else "F"
    return write_csv(rows, path.with_suffix(".csv.gz"), gzip.open)


def assert_nothing_raw(rows: list[Row], output: str) -> None:
    for row in rows:
        assert row["身份证号"] not in output
        assert row["手机号"] not in output


@pytest.mark.parametrize(
    ("writer", "kind"),
    [
        (write_csv, "CSV, delimiter ','"),
        (write_json, "JSON object"),
        (write_jsonl, "JSON lines"),
        (write_csv_gz, "CSV, delimiter ','"),
    ],
)
def test_faker_sample_is_consistent(
    writer: Callable[[list[Row], Path], Path], kind: str, tmp_path: Path
) -> None:
    rows = people()
    report = verify_json(writer([dict(row) for row in rows], tmp_path / "sample"))
    assert report["format"] == kind and report["rows"] == ROWS and not report["more_rows"]
    assert report["verdict"] == "consistent", report["reasons"]
    categories = {c["name"]: c["category"] for c in report["columns"]}
    assert categories == {
        "姓名": "name",
        "身份证号": "national_id",
        "性别": "gender",
        "出生日期": "birth_date",
        "年龄": "age",
        "籍贯": "birth_place",
        "住址": "address",
        "手机号": "phone",
        "email": "email",
    }
    kinds = {
        "validity",
        "duplicate_rows",
        "duplicate_ids",
        "birth_date",
        "gender",
        "age",
        "birth_place",
        "address",
    }
    assert {c["kind"] for c in report["checks"]} == kinds
    assert all(c["status"] == "pass" and c["compared"] == ROWS for c in report["checks"])
    assert_nothing_raw(rows, json.dumps(report, ensure_ascii=False))


def tamper(rows: list[Row], rnd: random.Random) -> list[Row]:
    """Birth dates shuffled in 30% of rows, genders flipped in 10%, IDs failing their checksum in 10%, IDs
    reused in other people's rows in 3%, and 5% more rows repeating others."""
    rows = [dict(row) for row in rows]
    n = len(rows)
    picked = rnd.sample(range(n), n * 3 // 10)
    births = [rows[i]["出生日期"] for i in picked]
    for i, birth in zip(picked, births[1:] + births[:1], strict=True):
        rows[i]["出生日期"] = birth
    for i in rnd.sample(range(n), n // 10):
        rows[i]["性别"] = "男" if rows[i]["性别"] == "女" else "女"
    for i in rnd.sample(range(n), n // 10):
        number = rows[i]["身份证号"][:17]
        rows[i]["身份证号"] = number + next(d for d in "0123456789" if d != ric.calc_check_digit(number))
    for i in rnd.sample(range(n), n * 3 // 100):
        rows[i]["身份证号"] = rows[i - 1]["身份证号"]
    return rows + rnd.sample(rows, n // 20)


def test_tampered_sample_is_inconsistent_and_names_each_problem(tmp_path: Path) -> None:
    original = people()
    rows = tamper(original, random.Random(9))
    path = write_csv(rows, tmp_path / "tampered.csv")
    report = verify_json(path)
    assert report["verdict"] == "inconsistent"
    failed = {c["label"] for c in report["checks"] if c["status"] == "fail"}
    assert failed == {
        "national_id check: 身份证号",
        "ID birth date vs 出生日期",
        "ID gender vs 性别",
        "duplicate rows",
        "duplicate IDs: 身份证号",
    }
    human = run(str(path))
    assert human.returncode == 0 and "verdict: inconsistent" in human.stdout
    for phrase in (
        "in 身份证号 fail the national_id check",
        "ID birth date disagrees with 出生日期 in",
        "ID gender digit disagrees with 性别 in",
        "repeat an earlier row",
        "hold an ID of 身份证号 already in another row",
    ):
        assert sum(phrase in reason for reason in report["reasons"]) == 1, phrase
        assert phrase in human.stdout
    birth = next(c for c in report["checks"] if c["kind"] == "birth_date")
    assert 0.25 < birth["rate"] < 0.35
    assert_nothing_raw(original + rows, human.stdout + human.stderr + json.dumps(report, ensure_ascii=False))


def test_ages_may_be_as_of_the_files_own_date(tmp_path: Path) -> None:
    snapshot = date(2019, 6, 30)
    rows = people(day=snapshot)
    rnd = random.Random(3)
    for row in rows:
        row["登记日期"] = date(
            2015 + rnd.randrange(4), 1 + rnd.randrange(12), 1 + rnd.randrange(28)
        ).isoformat()
    rows[0]["登记日期"] = snapshot.isoformat()
    report = verify_json(write_csv(rows, tmp_path / "2019.csv"))
    assert report["verdict"] == "consistent", report["reasons"]
    ages = next(c for c in report["checks"] if c["kind"] == "age")
    assert "at 2019-06-30 (latest date in 登记日期)" in ages["text"]
    registered = next(c for c in report["columns"] if c["name"] == "登记日期")
    assert registered["dates"] == {"min": registered["dates"]["min"], "max": "2019-06-30", "future": 0}


def test_reading_stops_at_the_limit_and_says_so(tmp_path: Path) -> None:
    report = verify_json(write_csv(people(), tmp_path / "s.csv"), "--limit", "50")
    assert report["rows"] == 50 and report["more_rows"]
    assert "read the first 50 rows; the file has more" in report["notes"]


TRUNCATED = "truncated gzip: the compressed data ends early; the rows up to there were read"


@pytest.mark.parametrize("kind", ["csv", "json"])
def test_a_truncated_download_is_read_up_to_its_end_and_said_so(kind: str, tmp_path: Path) -> None:
    rows = people()
    if kind == "csv":
        whole = write_csv(rows, tmp_path / "s.csv.gz", gzip.open).read_bytes()
    else:
        whole = gzip.compress(write_json(rows, tmp_path / "s.json").read_bytes())
    cut = tmp_path / f"cut.{kind}.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    result = run(str(cut), "--json")
    assert result.returncode == 0
    assert result.stderr == f"leaksonar: warning: {cut}: {TRUNCATED}\n"
    report = json.loads(result.stdout)
    assert 0 < report["rows"] < ROWS and report["compressed"] and report["truncated"]
    if kind == "csv":  # every complete line, and none cut: the one after the last line break is left out
        there = zlib.decompressobj(wbits=31).decompress(cut.read_bytes()).decode()
        complete = there.count("\n") - 1
        assert complete - 1 <= report["rows"] <= complete and report["rows"] > ROWS // 4
    assert TRUNCATED in report["notes"]
    shown = run(str(cut))
    assert TRUNCATED in shown.stdout and TRUNCATED in shown.stderr


def test_a_whole_file_is_not_truncated(tmp_path: Path) -> None:
    result = run(str(write_csv_gz(people(50), tmp_path / "s")), "--json")
    assert result.returncode == 0 and result.stderr == ""
    assert json.loads(result.stdout)["truncated"] is False


def test_a_first_row_of_identifiers_is_data_not_names(tmp_path: Path) -> None:
    rows = people(40)
    path = tmp_path / "headless.csv"
    path.write_text("\n".join(",".join(str(v) for v in row.values()) for row in rows) + "\n", "utf-8")
    result = run(str(path))
    assert result.returncode == 0 and "40 rows" in result.stdout
    assert_nothing_raw(rows, result.stdout)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", b"", "empty.csv: empty"),
        ("header.csv", "姓名,身份证号\n".encode(), "header.csv: no rows"),
        ("image.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not CSV, JSON or JSON lines (binary data)"),
        ("broken.json", b'[{"a": 1},\n {"a": ', "broken.json: line 2: malformed JSON"),
        ("numbers.json", b"[1, 2, 3]", "line 1: JSON record 1 is not an object"),
        ("meta.json", b'{\n  "count": 0\n}\n', "line 3: the JSON object holds no array of records"),
        ("deep.json", b"[" * 100_000 + b"]" * 100_000, "deep.json: line 1: JSON nested deeper than 64"),
        ("deep.jsonl", b'{"a": 1}\n' * 3 + b'{"a":' * 65 + b"1" + b"}" * 65, "line 4: JSON nested deeper"),
        ("deep_head.json", b'{"a":' * 20_000 + b"1" + b"}" * 20_000, "line 1: JSON nested deeper than 64"),
        ("long.csv", b"a,b\n1," + b"x" * (2 << 20) + b"\n", "long.csv: line 2: longer than 1,048,576"),
        ("field.csv", b'a,b\n1,"' + (b"x" * 999 + b"\n") * 200 + b'"\n', "line 133: malformed CSV (field"),
        ("nul.csv", b"a,b\n" + b"1,2\n" * 20_000 + b"3,\x004\n", "line 20002: not CSV, JSON or JSON lines"),
        ("cut.gz", gzip.compress(b"a,b\n1,2\n")[:12], "no rows (the compressed data ends early)"),
        ("none.gz", gzip.compress(b"")[:8], "no data (the compressed file is empty or cut short)"),
        (
            "big.json",
            b'[{"id": 1, "n": ' + b"9" * 4301 + b"}]",
            "big.json: line 1: a JSON number longer than",
        ),
        ("big.jsonl", b'{"n": 1}\n{"n": -' + b"9" * 9000 + b"}\n", "big.jsonl: line 2: a JSON number longer"),
        ("big.json.gz", gzip.compress(b'[{"n": ' + b"1" * 100_000 + b"}]"), "line 1: a JSON number longer"),
    ],
)
def test_bad_file_is_one_line_and_exit_2(name: str, content: bytes, message: str, tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    assert_bad_input(run(str(path)), message)


def test_nesting_is_counted_outside_strings(tmp_path: Path) -> None:
    """Brackets inside strings (and escaped quotes before them) are text, not nesting."""
    path = tmp_path / "brackets.json"
    path.write_text(json.dumps([{"a": "[" * 200 + '"' + "{" * 200, "b": "x\\"}, {"a": "]]", "b": [[["y"]]]}]))
    assert verify_json(path)["rows"] == 2


def test_a_file_that_is_not_utf8_is_read_with_replacement_characters(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes(b"name,city\n" + b"\xff\xfe\xfa,x\n" * 10)
    assert verify_json(path)["rows"] == 10


def test_missing_file_directory_and_bad_limit(tmp_path: Path) -> None:
    assert_bad_input(run(str(tmp_path / "nowhere.csv")), "No such file or directory")
    assert_bad_input(run(str(tmp_path)), "Is a directory")
    sample = str(write_csv(people(5), tmp_path / "s.csv"))
    assert_bad_input(run(sample, "--limit", "0"), "Invalid value for '--limit'")


def assert_bad_input(result: subprocess.CompletedProcess[str], message: str) -> None:
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert result.stdout == ""
