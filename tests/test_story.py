"""The reference case as a story, on a lab of its own: an open OpenSearch police database is found, wiped
and held to ransom, the note removed, the server gone; each step is scanned with `--alerts`, so every
change event reaches a signed webhook and an SMTP server (both on 127.0.0.1) once, and the abuse letter
names the attack without a raw national ID."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from conftest import leaksonar
from test_alerts import SECRET, Inbox, Receiver

from leaksonar.lab.geo import write_lab_mmdbs
from leaksonar.lab.kinds.opensearch import reference_case

BTC = "1BoatSLRHtKNngkdXEeobR76b53LETtpyT"
NOTE = (
    f"All your data is backed up. You must pay 10 BTC to {BTC} In 48 hours, your data will be publicly "
    "disclosed and deleted. After paying send mail to us: recover@example.invalid"
)
BASES = [str(ipaddress.IPv4Address("127.82.0.0") + k * 16 * 256) for k in range(4)]


@pytest.fixture(scope="module")
def opensearch() -> Iterator[dict[str, Any]]:
    """Its own opensearch-open, seeded with the reference case (this test wipes it)."""
    from leaksonar.lab import LabError, lab_down, lab_up

    directory = Path(tempfile.mkdtemp(prefix="leaksonar-story-"))
    try:
        for base in BASES:
            try:
                manifest = lab_up(directory, base, ["opensearch-open"])
                break
            except LabError as exc:
                if "in use" not in str(exc) or base == BASES[-1]:
                    raise
        [entry] = manifest["services"]
        yield {**entry, "directory": directory, "base": base}
    finally:
        if (directory / "manifest.json").exists():
            lab_down(directory)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def inbox() -> Iterator[tuple[int, Inbox]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mail = Inbox()
    controller = Controller(mail, hostname="127.0.0.1", port=port)
    controller.start()
    yield port, mail
    controller.stop()


@pytest.fixture
def hook() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.server.shutdown()


def test_the_reference_case_story(
    opensearch: dict[str, Any], hook: Receiver, inbox: tuple[int, Inbox], tmp_path: Path
) -> None:
    from leaksonar.lab import lab_down

    ip, port = opensearch["ip"], opensearch["port"]
    smtp_port, mail = inbox
    db, alerts = str(tmp_path / "index.db"), tmp_path / "alerts.toml"
    alerts.write_text(
        f'[[webhook]]\nname = "soc"\nurl = "{hook.url}"\nsecret = "{SECRET}"\nbackoff = 0.01\n\n'
        f'[[email]]\nname = "owners"\nsmtp_host = "127.0.0.1"\nsmtp_port = {smtp_port}\n'
        'from = "leaksonar@example.org"\nto = ["soc@example.org"]\n\n'
        '[[rule]]\nname = "all"\nchannels = ["soc", "owners"]\n'
    )
    api = httpx.Client(base_url=f"http://{ip}:{port}", timeout=10)

    def write(method: str, path: str, body: dict[str, Any] | None = None) -> None:
        api.request(method, path, json=body).raise_for_status()

    geo, asn = write_lab_mmdbs(tmp_path, opensearch["base"])
    enrich = ("--geo-db", str(geo), "--asn-db", str(asn))
    seen = 0

    def scan_step() -> list[dict[str, Any]]:
        nonlocal seen
        leaksonar("scan", ip, "-p", str(port), "--db", db, "--alerts", str(alerts), *enrich, "-q")
        lines = leaksonar("events", "--json", "--db", db).stdout.splitlines()
        records = [json.loads(line) for line in lines]
        new, seen = records[seen:], len(records)
        return new

    def types(records: list[dict[str, Any]]) -> list[str]:
        return [r["type"] for r in records]

    # a. found: the police database, open
    found = scan_step()
    assert types(found) == ["new_exposure"]

    # b. the attacker drops the three indices and leaves a note (the test writes; the scanner only reads)
    for index in ("person", "address", "case"):
        write("DELETE", f"/{index}")
    write("PUT", "/read_me")
    write("PUT", "/read_me/_doc/1?refresh=true", {"message": NOTE})
    attacked = scan_step()
    assert types(attacked) == ["wiped", "ransom_note_appeared"]
    assert attacked[1]["summary"] == f"ransom note appeared in index read_me: 10 BTC to {BTC}"

    # c. the note goes, a small `person` index is left. Against the previous snapshot (read_me, 1 row) the
    # rows grew 1 -> 20, but none of the old collection names is left, which the diff calls "wiped"
    # (collections replaced) before any growth; the note's disappearance is ransom_note_removed, and the
    # people left bring personal data back where the note held none: pii_added.
    people = list(reference_case()["person"].values())[:20]
    write("DELETE", "/read_me")
    for number, person in enumerate(people):
        write("PUT", f"/person/_doc/{number}", person)
    write("POST", "/person/_refresh")
    cleaned = scan_step()
    assert types(cleaned) == ["wiped", "ransom_note_removed", "pii_added"]
    assert cleaned[0]["summary"] == "collections replaced: read_me -> person: wiped"
    assert (cleaned[0]["before"]["rows"], cleaned[0]["after"]["rows"]) == (1, 20)
    api.close()

    # d. the server is gone
    lab_down(opensearch["directory"])
    assert types(scan_step()) == ["closed"]

    records = [json.loads(line) for line in leaksonar("events", "--json", "--db", db).stdout.splitlines()]
    assert types(records) == [
        "new_exposure",
        "wiped",
        "ransom_note_appeared",
        "wiped",
        "ransom_note_removed",
        "pii_added",
        "closed",
    ]

    # each event once to the webhook, signed; one e-mail per event
    for headers, body in hook.requests:
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["x-leaksonar-signature"], expected)
    assert sorted(int(h["x-leaksonar-event-id"]) for h, _ in hook.requests) == sorted(
        r["id"] for r in records
    )
    assert sorted(b["type"] for b in hook.bodies()) == sorted(types(records))
    assert len(mail.messages) == len(records)
    subjects = [m["Subject"].strip() for m in mail.messages]
    assert all(s.endswith(f" on {ip}:{port} (elasticsearch)") for s in subjects)
    assert sorted(s.split(": ", 1)[1].split(" on ")[0] for s in subjects) == sorted(
        t.replace("_", " ") for t in types(records)
    )

    # the letter names the attack and quotes no national ID
    out = tmp_path / "letters"
    leaksonar("report", "--network", f"{ip}/32", "--db", db, "--out", str(out), "--format", "md", "--dry-run")
    [letter_file] = out.glob("**/*.md")
    letter = letter_file.read_text()
    assert BTC in letter
    ids = {p["sfzh"] for p in reference_case()["person"].values()}
    assert not [raw for raw in ids if raw in letter]


def test_a_letter_for_a_scan_without_enrichment(
    lab: dict[str, Any], scanned: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "letters"
    block = f"{lab['base']}/24"
    leaksonar("report", "--network", block, "--db", str(scanned["db"]), "--out", str(out), "--dry-run")
    letters = "".join(path.read_text() for path in out.glob("**/*.md"))
    assert "country:" not in letters
    assert all(s["ip"] in letters for s in lab["services"] if s["auth"] == "none")


@pytest.mark.parametrize("command", ["scan", "watch"])
def test_a_bad_alerts_file_is_refused_before_scanning(command: str, tmp_path: Path) -> None:
    db, alerts = tmp_path / "index.db", tmp_path / "alerts.toml"
    alerts.write_text('[[rule]]\nname = "all"\nchannels = ["nowhere"]\n')
    result = leaksonar(command, "127.0.0.1", "-p", "1", "--alerts", str(alerts), "--db", str(db), check=False)
    assert result.returncode == 2
    assert result.stderr.startswith(f"leaksonar: error: {alerts}") and result.stderr.count("\n") == 1
    assert not db.exists()
