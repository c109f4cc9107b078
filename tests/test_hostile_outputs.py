"""Server text at every non-terminal output: a service whose every string is hostile (its certificate's
names, subject and issuer too), stored through the store API, then shown as a reader sees it: the Markdown
letter rendered by a CommonMark/GFM renderer with autolinks, the HTML letter, the host page, the CSV and
JSONL exports, a Slack message and an e-mail received by real receivers on 127.0.0.1."""

from __future__ import annotations

import csv
import html
import io
import json
import re
from email.message import EmailMessage
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

import pytest
import test_alerts
from conftest import leaksonar
from fastapi.testclient import TestClient
from hostile_text import MARKDOWN_RENDERERS
from markdown_it import MarkdownIt
from test_alerts import Inbox, Receiver, config

from leaksonar.model import (
    Assessment,
    Certificate,
    Collection,
    Event,
    Finding,
    PiiHit,
    RansomNote,
    Software,
    Tls,
)
from leaksonar.notify.alerts import deliver_events
from leaksonar.report import FORMATS, Selection, load_owners, plan, write_reports
from leaksonar.sanitize import for_slack, for_terminal
from leaksonar.store.db import Store
from leaksonar.web.app import create_app

PAYLOADS = (
    "[/]",
    "[link=https://evil.example]x[/link]",
    "\x1b]0;t\x07",
    "\x1b[2J",
    "bell\x07nul\x00",
    "\u202eevil\u2066",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "![t](http://evil.example/p.png)",
    "[x](javascript:alert(1))",
    "**bold**",
    "# head",
    "| a | b |",
    "https://evil.example",
    "www.evil.example",
    "<!channel>",
    "<http://evil|x>",
    '=HYPERLINK("http://evil","x")',
    "+1",
    "@SUM(1)",
    "-2+3",
)
HOSTILE = " ".join(PAYLOADS)
LONG = "L" * 5000 + HOSTILE
receiver, smtp = test_alerts.receiver, test_alerts.smtp
"""The loopback webhook receiver and SMTP server of the alert tests."""
FORMULA = ("=", "+", "-", "@", "\t", "\r", "\n")
NOW = "2026-11-28T05:00:00Z"


def hostile_finding(ip: str, port: int, lead: str) -> Finding:
    """A finding whose every string field a server could write starts with `lead` and carries every payload
    (its network's organisation, the owner the letter goes to, carries them without the lead)."""
    text = f"{lead}{HOSTILE}"
    note = RansomNote(text, text, (text,), (text,), 10.0)
    return Finding(
        ip=ip,
        port=port,
        protocol="elasticsearch",
        software=Software(text, LONG),
        auth="none",
        exposed=True,
        time=NOW,
        scan_id="hostile",
        databases=1,
        rows=970_000,
        size_bytes=23_000_000,
        collections=(Collection(text, text, 970_000, 23_000_000, (text,)),),
        assessment=Assessment(
            {"national_id": PiiHit(18, 20, (text,), text)},
            {(text, text): ("national_id",)},
            True,
            (note,),
            "critical",
            text,
        ),
        geo={"country": "CN"},
        network={"asn": 64500, "org": HOSTILE},
        hostname=f"name{text}",
        tls=Tls(f"version{text}", f"cipher{text}", hostile_certificate(text)),
    )


def hostile_certificate(text: str) -> Certificate:
    """A certificate whose subject, issuer and names (`cert{text}`, `*.{text}`) carry `text`."""
    return Certificate(
        f"subject{text}", (f"cert{text}", f"*.{text}"), f"issuer{text}", NOW, NOW, True, True, text, text
    )


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An index holding two hostile services (leading payloads: a formula and a Markdown heading)."""
    db = tmp_path_factory.mktemp("hostile") / "index.db"
    store = Store(str(db))
    store.scans.begin("hostile", NOW, targets="127.20.0.0/24", ports="9200", size=256, options={})
    store.findings.add(
        [
            hostile_finding("127.20.0.5", 9200, '=HYPERLINK("http://evil","x") '),
            hostile_finding("127.20.0.6", 9200, "# "),
        ]
    )
    store.scans.finish("hostile", NOW, "done")
    store.events.record("hostile")
    return db


CERT_LINE = (
    f"its TLS certificate names: cert# {HOSTILE}, *.# {HOSTILE} (issued by issuer# {HOSTILE}, self-signed"
)
"""What the letters say of the hostile certificate of the service whose lead is a Markdown heading."""


def visible(rendered: str) -> str:
    """The text a reader sees in rendered HTML: tags dropped, entities decoded."""
    return html.unescape(re.sub(r"<[^>]*>", "", rendered))


OUR_EMPHASIS = {"critical", "high", "medium", "low", "attacked", "Signs of attack"}
"""What the Markdown letter itself sets in bold."""


def assert_no_markup(rendered: str, allowed_links: tuple[str, ...]) -> None:
    """No element a server string could have made: image, script, raw HTML, emphasis, heading; links
    only to `allowed_links`."""
    for tag in ("<img", "<script", "<iframe", "<em>", "<del", "<h1"):
        assert tag not in rendered.lower(), tag
    assert set(re.findall(r"<strong>(.*?)</strong>", rendered)) <= OUR_EMPHASIS
    links = re.findall(r"<a [^>]*>", rendered)
    assert all(re.fullmatch(r'<a href="[^"]*">', link) for link in links), links
    assert all(link[9:].startswith(allowed_links) for link in links), links


def no_raw_controls(text: str) -> None:
    assert not re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029]", text)


@pytest.fixture(scope="module")
def letters(index: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The letter, in both formats, to the owner of the hostile services (named by their hostile ASN org).
    Written through the report API: `leaksonar report` itself prints the owner's name on the terminal,
    which is the terminal's concern."""
    out, store = tmp_path_factory.mktemp("letters"), Store(str(index))
    plans = plan(store, Selection(network=IPv4Network("127.20.0.0/24")), load_owners(None), NOW, False)
    write_reports(store, plans, out, FORMATS, NOW)
    files = {p.suffix: p.read_text(encoding="utf-8") for p in out.iterdir()}
    assert len(files) == 2, "one letter (md, html) to the one owner"
    return files


@pytest.mark.parametrize("renderer", MARKDOWN_RENDERERS.values(), ids=MARKDOWN_RENDERERS.keys())
def test_markdown_letter_renders_server_text_as_literal_text(
    letters: dict[str, str], renderer: MarkdownIt
) -> None:
    md = letters[".md"]
    no_raw_controls(md)
    rendered = renderer.render(md)
    # the only links are the vendors' documentation, written by leaksonar
    assert_no_markup(rendered, allowed_links=("https://www.elastic.co/", "https://opensearch.org/"))
    assert "<h2>Summary</h2>" in rendered
    shown = visible(rendered)
    for payload in PAYLOADS:
        assert for_terminal(payload).replace("@", "＠") in shown, payload  # no e-mail autolink, no mention
    assert "L" * 5000 in shown
    assert for_terminal(CERT_LINE).replace("@", "＠") in shown
    assert for_terminal(f"Reached by the name name# {HOSTILE}").replace("@", "＠") in shown
    if "<table>" not in rendered:
        return  # CommonMark has no tables
    # the summary table keeps its eight columns in every row, whatever the cells hold
    table = rendered.split("<h2>Summary</h2>")[1].split("</table>")[0]
    assert [row.count("<td") for row in table.split("<tr>")[2:]] == [8, 8]


def test_markdown_letter_reads_as_plain_text_where_it_can(letters: dict[str, str]) -> None:
    md = letters[".md"]
    assert md.startswith("Subject: ")
    assert "127.20.0.5:9200" in md and "national_id" in md and "2026-11-28" in md
    assert "\\<script\\>alert(1)\\</script\\>" in md


def test_html_letter_escapes_and_shows_controls(letters: dict[str, str]) -> None:
    page = letters[".html"]
    no_raw_controls(page)
    assert_no_markup(
        page, allowed_links=("#s", "#close", "https://www.elastic.co/", "https://opensearch.org/")
    )
    shown = visible(page)
    for payload in PAYLOADS:
        assert for_terminal(payload) in shown, payload
    assert for_terminal(CERT_LINE) in shown


def test_host_page_shows_the_hostile_certificate_as_text(index: Path) -> None:
    client = TestClient(create_app(Store(str(index)), allowed_hosts=["testserver"], anonymous="analyst"))
    page = client.get("/host/127.20.0.6")
    assert page.status_code == 200
    no_raw_controls(page.text)
    for tag in ("<img", "<script>alert", "<iframe", "<em>"):
        assert tag not in page.text.lower(), tag
    assert page.text.count("<h1") == 1  # the page's own title
    assert not [link for link in re.findall(r'href="([^"]*)"', page.text) if "evil" in link or ":" in link]
    shown = visible(page.text)
    for value in (
        f"name# {HOSTILE}",
        f"cert# {HOSTILE}, *.# {HOSTILE}",
        f"subject# {HOSTILE}",
        f"issuer# {HOSTILE}",
    ):
        assert for_terminal(value) in shown, value


def test_csv_export_is_safe_in_a_spreadsheet(index: Path, tmp_path: Path) -> None:
    path = tmp_path / "services.csv"
    run = leaksonar("export", "--db", str(index), "--format", "csv", "--out", str(path))
    assert "exported 2 service(s)" in run.stderr
    raw = path.read_text(encoding="utf-8")
    no_raw_controls(raw.replace("\r\n", ""))
    rows = list(csv.DictReader(io.StringIO(raw, newline="")))
    assert list(rows[0]) == [
        "ip", "port", "protocol", "software", "version", "auth", "exposed", "severity", "databases",
        "collections", "rows", "size_bytes", "pii", "ransom", "btc_addresses", "country", "asn", "org",
        "first_seen", "last_seen", "summary", "hostname", "tls_version", "cert_names", "cert_issuer",
        "cert_not_after", "cert_expired", "cert_sha256",
    ]  # fmt: skip
    assert {r["ip"] for r in rows} == {"127.20.0.5", "127.20.0.6"}
    for row in rows:
        for cell in row.values():
            assert not cell.startswith(FORMULA), cell
        assert (row["port"], row["rows"], row["exposed"], row["ransom"], row["asn"]) == (
            "9200", "970000", "true", "true", "64500"
        )  # fmt: skip
        assert row["pii"] == "national_id" and row["severity"] == "critical"
    formula = next(r for r in rows if r["ip"] == "127.20.0.5")
    assert formula["software"] == "'" + for_terminal(f'=HYPERLINK("http://evil","x") {HOSTILE}')
    assert formula["version"].startswith("L" * 5000)
    lead = '=HYPERLINK("http://evil","x") '
    assert formula["cert_names"] == for_terminal(f"cert{lead}{HOSTILE} *.{lead}{HOSTILE}")
    assert formula["cert_issuer"] == for_terminal(f"issuer{lead}{HOSTILE}")
    assert formula["cert_sha256"] == "'" + for_terminal(f"{lead}{HOSTILE}")


def test_jsonl_export_is_the_exact_records_and_follows_the_query(index: Path) -> None:
    everything = leaksonar("export", "--db", str(index)).stdout.splitlines()
    records = [json.loads(line) for line in everything]
    assert [r["ip"] for r in records] == ["127.20.0.5", "127.20.0.6"]
    assert records[0]["software"]["name"] == f'=HYPERLINK("http://evil","x") {HOSTILE}'
    assert records[0]["software"]["version"] == LONG
    one = leaksonar("export", "ip:127.20.0.6", "--db", str(index), "--format", "jsonl").stdout
    assert [json.loads(line)["ip"] for line in one.splitlines()] == ["127.20.0.6"]


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (("--format", "xml"), "--format 'xml'"),
        (("protocol:(",), "query"),
        (("--out", "/nonexistent/x"), "--out"),
    ],
)
def test_export_bad_input_is_one_line_exit_2(index: Path, args: tuple[str, ...], problem: str) -> None:
    bad = leaksonar("export", "--db", str(index), *args, check=False)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and problem in bad.stderr, bad.stderr


def hostile_event(**kw: Any) -> Event:
    values: dict[str, Any] = {
        "ip": "127.20.0.5",
        "port": 9200,
        "type": "ransom_note_appeared",
        "time": NOW,
        "scan_id": "hostile",
        "protocol": "elasticsearch\r\nBcc: victim@evil.example",
        "severity": "critical",
        "summary": HOSTILE,
        "before": {"notes": 0},
        "after": {"notes": 1, "note": HOSTILE},
    }
    return Event(**{**values, **kw})


def test_slack_message_shows_server_text_without_mentions_links_or_formatting(
    tmp_path: Path, receiver: Receiver, index: Path
) -> None:
    settings = config(
        tmp_path,
        f'[[slack]]\nname = "chat"\nurl = "{receiver.url}"\n[[rule]]\nname = "all"\nchannels = ["chat"]\n',
    )
    assert deliver_events([hostile_event()], settings, Store(str(index))).sent == 1
    [payload] = receiver.bodies()
    texts = [payload["text"], payload["blocks"][1]["text"]["text"]]
    texts += [f["text"] for f in payload["blocks"][2]["fields"]]
    texts += [e["text"] for e in payload["blocks"][3]["elements"]]
    for text in texts:
        no_raw_controls(text)
        assert "<" not in text and ">" not in text  # no <!channel>, no <url|label>
        assert not re.search(r"&(?!amp;|lt;|gt;)", text)
    summary = payload["blocks"][1]["text"]["text"]
    assert summary == for_slack(HOSTILE)
    for mark in "*_~`@":
        assert mark not in summary
    assert "&lt;!channel&gt;" in summary and "&lt;http://evil|x&gt;" in summary
    no_raw_controls(payload["blocks"][0]["text"]["text"])


def test_email_keeps_server_text_on_its_line(tmp_path: Path, smtp: tuple[int, Inbox], index: Path) -> None:
    port, inbox = smtp
    settings = config(
        tmp_path,
        f'[[email]]\nname = "mail"\nsmtp_host = "127.0.0.1"\nsmtp_port = {port}\n'
        'from = "leaksonar@example.org"\nto = ["soc@example.org"]\n'
        '[[rule]]\nname = "all"\nchannels = ["mail"]\n',
    )
    assert deliver_events([hostile_event()], settings, Store(str(index))).sent == 1
    [message] = inbox.messages
    assert isinstance(message, EmailMessage)
    assert message["Bcc"] is None and message.get_all("To") == ["soc@example.org"]
    assert "\\x0d\\x0aBcc: victim@evil.example" in message["Subject"]
    assert "\n" not in str(message["Subject"]) and "\r" not in str(message["Subject"])
    body = message.get_content()
    no_raw_controls(body.replace("\n", ""))
    assert for_terminal(HOSTILE) in body.splitlines()
