"""Reading other scanners' open ports: one file per tool and format as the tool writes it, detection,
streaming, duplicates, bad lines and hostile input (pure: no traffic)."""

from __future__ import annotations

import io
import itertools
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leaksonar.inputs import InputError
from leaksonar.openports import (
    MAX_LINE,
    OpenPort,
    OpenPortCounts,
    binary_lines,
    read_open_ports,
)

SAMPLES = Path(__file__).parent / "data" / "openports"

EXPECTED = [("127.78.0.1", 6379), ("127.78.0.2", 9200)]

# (file in tests/data/openports, format detected, default port, open TCP ports, entries skipped)
FORMATS = [
    ("masscan.oL", "masscan-list", None, EXPECTED, 2),
    ("masscan.oJ", "masscan-json", None, EXPECTED, 1),
    ("masscan-1.0.oJ", "masscan-json", None, EXPECTED, 0),
    ("masscan.oD", "masscan-ndjson", None, EXPECTED, 2),
    ("masscan.oG", "masscan-grepable", None, EXPECTED, 1),
    ("masscan.stdout", "masscan-stdout", None, EXPECTED, 1),
    ("zmap.txt", "zmap-addresses", 6379, [("127.78.0.1", 6379), ("127.78.0.2", 6379)], 0),
    ("zmap.csv", "zmap-csv", None, EXPECTED, 1),
    ("zmap.json", "zmap-json", None, EXPECTED, 1),
    ("naabu.txt", "naabu-hostport", None, EXPECTED, 0),
    ("naabu.jsonl", "naabu-json", None, EXPECTED, 1),
    ("nmap.gnmap", "nmap-grepable", None, EXPECTED, 5),
    ("nmap.xml", "nmap-xml", None, EXPECTED, 2),
    ("zgrab2.csv", "zgrab2-csv", 9200, [*EXPECTED, ("127.78.0.5", 9200)], 0),
]


@pytest.mark.parametrize(("file", "name", "default_port", "expected", "skipped"), FORMATS)
def test_each_format_as_the_tool_writes_it(
    file: str, name: str, default_port: int | None, expected: list[tuple[str, int]], skipped: int
) -> None:
    path = SAMPLES / file
    counts = OpenPortCounts()
    with path.open("rb") as handle:
        ports = list(
            read_open_ports(binary_lines(handle), str(path), default_port=default_port, counts=counts)
        )
    assert [(p.ip, p.port) for p in ports] == expected
    content = path.read_text()
    assert counts == OpenPortCounts(name, content.count("\n"), len(expected), 0, 0, skipped)
    lines = content.splitlines()
    for port in ports:  # the line named is the one that gives the port (nmap's XML: its <port> element)
        assert (f'portid="{port.port}"' if name == "nmap-xml" else port.ip) in lines[port.line - 1]


@pytest.mark.parametrize(
    ("first", "name"),
    [
        ("#masscan\nopen tcp 1 127.0.0.1 0", "masscan-list"),
        ('[\n{"ip": "127.0.0.1", "ports": []}', "masscan-json"),
        ('{"ip":"127.0.0.1","port":1,"proto":"tcp","rec_type":"status","data":{}}', "masscan-ndjson"),
        ('{"ip":"127.0.0.1","port":1}', "naabu-json"),
        ('{"saddr":"127.0.0.1"}', "zmap-json"),
        ("Timestamp: 0\tHost: 127.0.0.1 ()\tPorts: 1/open/tcp////", "masscan-grepable"),
        ("# Nmap 7.93\nHost: 127.0.0.1 ()\tStatus: Up", "nmap-grepable"),
        ("Discovered open port 1/tcp on 127.0.0.1", "masscan-stdout"),
        ("SADDR,sport", "zmap-csv"),
        ("127.0.0.1", "zmap-addresses"),
        ("fd00::1", "zmap-addresses"),
        ("127.0.0.1:1", "naabu-hostport"),
        ("[fd00::1]:1", "naabu-hostport"),
        ("127.0.0.1, example.org", "zgrab2-csv"),
        ('<?xml version="1.0"?>\n<nmaprun/>', "nmap-xml"),
        ("<!DOCTYPE nmaprun>\n<nmaprun/>", "nmap-xml"),
    ],
)
def test_format_detected_from_the_first_meaningful_line(first: str, name: str) -> None:
    counts = OpenPortCounts()
    list(read_open_ports(["", "  ", *first.splitlines()], "-", default_port=1, counts=counts))
    assert counts.format == name


def test_unknown_format_is_refused_naming_the_first_meaningful_line() -> None:
    with pytest.raises(InputError, match=r"^-: line 3: is in no known open-port format$"):
        list(read_open_ports(["", "# comment", "hello world"], "-"))


def test_ipv6_is_yielded_compressed_and_a_mapped_address_as_ipv4() -> None:
    """`::ffff:127.78.0.2` is the IPv4 address a connection reaches: the scope guard must see it as that."""
    lines = ["[fd00:0:0:0::1]:6379", "127.78.0.1:6379", "[::ffff:127.78.0.2]:6379", "[::ffff:7f4e:1]:6379"]
    ports = list(read_open_ports(lines, "-"))
    assert ports == [
        OpenPort("fd00::1", 6379, 1),
        OpenPort("127.78.0.1", 6379, 2),
        OpenPort("127.78.0.2", 6379, 3),
    ]


def test_a_slow_endless_producer_is_read_as_it_comes() -> None:
    consumed = 0

    def producer() -> Iterator[bytes]:
        nonlocal consumed
        for number in itertools.count():
            consumed += 1
            time.sleep(0.001)
            yield (
                b'{"ip":"127.78.%d.%d","port":6379,"proto":"tcp","rec_type":"status","data":{"status":"open"}}\n'
                % (
                    number // 256 % 256,
                    number % 256,
                )
            )

    ports = read_open_ports(producer(), "-")
    assert next(ports) == OpenPort("127.78.0.0", 6379, 1)
    assert consumed == 1
    assert [p.line for p in itertools.islice(ports, 99)] == list(range(2, 101))
    assert consumed == 100


def test_duplicates_are_dropped_within_the_window() -> None:
    lines = ["127.78.0.1:1", "127.78.0.2:1", "127.78.0.1:1", "127.78.0.3:1", "127.78.0.1:1", "127.78.0.1:2"]
    counts = OpenPortCounts()
    ports = list(read_open_ports(lines, "-", counts=counts, dedup_window=2))
    # With room for 2 pairs, 127.78.0.1:1 is dropped at line 3 and read again at line 5 (it left the window).
    assert [p.line for p in ports] == [1, 2, 4, 5, 6]
    assert counts.duplicates == 1
    counts = OpenPortCounts()
    assert [p.line for p in read_open_ports(lines, "-", counts=counts)] == [1, 2, 4, 6]
    assert counts.duplicates == 2


BAD_LINES = [
    ("open tcp 70000 127.78.0.2 0", "has a port that is not a number within 1-65535"),
    ("open tcp 0 127.78.0.2 0", "has a port that is not a number within 1-65535"),
    ("open tcp 80 127.78.0.256 0", "has no valid IP address"),
    ("open tcp 80 fe80::1%eth0 0", "has no valid IP address"),
    ("open tcp", "is not a masscan list record"),
]


def test_a_json_record_without_its_port_is_a_bad_line() -> None:
    lines = ['{"ip":"127.78.0.1","port":80}', '{"ip":"127.78.0.2"}', '{"host":"127.78.0.3","port":80}']
    with pytest.raises(InputError, match=r"^-: line 2: has no port$"):
        list(read_open_ports(lines, "-", default_port=443))
    ports = list(read_open_ports(lines, "-", default_port=443, skip_bad_lines=True))
    assert [(p.ip, p.port) for p in ports] == [("127.78.0.1", 80), ("127.78.0.3", 80)]


@pytest.mark.parametrize(("bad", "reason"), BAD_LINES)
def test_a_malformed_line_is_an_error_with_its_number_or_counted_and_skipped(bad: str, reason: str) -> None:
    lines = ["#masscan", "open tcp 80 127.78.0.1 0", bad, "open tcp 80 127.78.0.3 0", "# end"]
    with pytest.raises(InputError) as error:
        list(read_open_ports(lines, "open.txt"))
    assert str(error.value) == f"open.txt: line 3: {reason}"
    counts = OpenPortCounts()
    ports = list(read_open_ports(lines, "open.txt", skip_bad_lines=True, counts=counts))
    assert [p.ip for p in ports] == ["127.78.0.1", "127.78.0.3"]
    assert (counts.lines, counts.ports, counts.bad_lines) == (5, 2, 1)


def test_a_missing_port_is_an_error_even_when_bad_lines_are_skipped() -> None:
    with pytest.raises(InputError, match=r"^-: line 1: gives no port and no default port was given$"):
        list(read_open_ports(["127.78.0.1"], "-", skip_bad_lines=True))


HOSTILE = "\x1b]0;owned\x07\x1b[31m<script>"


@pytest.mark.parametrize(
    "lines",
    [
        [f"open tcp 80 127.78.0.1{HOSTILE} 0"],
        [f'{{"ip":"{HOSTILE}","port":80}}'],
        [f"Discovered open port 80/tcp on {HOSTILE}"],
        [f"127.78.0.1:80{HOSTILE}"],
        ["127.78.0.1:80", f"{HOSTILE}:80"],
        ['{"ip":"127.78.0.1","port":80}', '{"ip": ' + "[" * 40_000 + "]" * 40_000 + "}"],
        ['{"ip":"127.78.0.1","port":80}', b"\xff\xfe" + HOSTILE.encode()],
    ],
)
def test_hostile_lines_are_never_echoed(lines: list[str | bytes]) -> None:
    with pytest.raises(InputError) as error:
        list(read_open_ports(lines, "-", default_port=1))
    message = str(error.value)
    assert message.isprintable() and "owned" not in message and "script" not in message


def test_a_huge_line_is_read_bounded_and_refused() -> None:
    data = b"127.78.0.1:80\n" + b"A" * (1 << 20) + b"\n127.78.0.2:80\n"
    with pytest.raises(InputError, match=rf"^-: line 2: longer than {MAX_LINE:,} bytes$"):
        list(read_open_ports(binary_lines(io.BytesIO(data)), "-"))
    lines = list(binary_lines(io.BytesIO(data)))
    assert len(lines) == 3 and max(len(line) for line in lines) == MAX_LINE + 1
    counts = OpenPortCounts()
    ports = list(read_open_ports(binary_lines(io.BytesIO(data)), "-", skip_bad_lines=True, counts=counts))
    assert [p.ip for p in ports] == ["127.78.0.1", "127.78.0.2"] and counts.bad_lines == 1


BILLION_LAUGHS = """\
<?xml version="1.0"?>
<!DOCTYPE nmaprun [
<!ENTITY lol "lol">
<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<nmaprun><host><address addr="127.78.0.1" addrtype="ipv4"/><ports>
<port protocol="tcp" portid="80"><state state="open" reason="&lol9;"/></port></ports></host></nmaprun>
"""

EXTERNAL_ENTITY = """\
<?xml version="1.0"?>
<!DOCTYPE nmaprun SYSTEM "file:///etc/passwd">
<nmaprun>&xxe;</nmaprun>
"""


@pytest.mark.parametrize(
    ("xml", "line", "reason"),
    [
        (BILLION_LAUGHS, 2, "has an XML DTD (refused)"),
        (EXTERNAL_ENTITY, 2, "has an XML DTD (refused)"),
        ('<?xml version="1.0"?>\n<nmaprun>&xxe;</nmaprun>', 2, "is not well-formed XML (undefined entity)"),
        ('<?xml version="1.0"?>\n<nmaprun><host>\n</nmaprun>\n', 3, "is not well-formed XML"),
        ('<?xml version="1.0"?>\n<nmaprun>' + "<a>" * 20_000, 2, "nests XML deeper than 64 elements"),
        ('<?xml version="1.0"?>\n<nmaprun>\n<host>', 3, "ends before the XML document does"),
    ],
)
def test_hostile_xml_is_refused_even_when_bad_lines_are_skipped(xml: str, line: int, reason: str) -> None:
    started = time.monotonic()
    with pytest.raises(InputError) as error:
        list(read_open_ports(xml.splitlines(), "scan.xml", skip_bad_lines=True))
    assert time.monotonic() - started < 2
    assert (error.value.line, error.value.reason[: len(reason)]) == (line, reason)
    assert "lol" not in str(error.value) and "passwd" not in str(error.value)


def test_an_xml_token_spread_over_many_lines_is_bounded() -> None:
    lines: Iterable[str] = itertools.chain(
        ['<?xml version="1.0"?>', "<nmaprun><!-- "], itertools.repeat("x" * 1000)
    )
    with pytest.raises(InputError, match="XML token longer than"):
        list(read_open_ports(lines, "-"))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=80), st.binary(max_size=80)), max_size=8))
def test_any_input_gives_ports_or_a_one_line_error(lines: list[str | bytes]) -> None:
    try:
        for port in read_open_ports(lines, "-", default_port=80):
            assert 1 <= port.port <= 65535 and 1 <= port.line <= len(lines)
    except InputError as error:
        assert error.path == "-" and "\n" not in str(error) and str(error).isprintable()


RENDER = {
    "masscan-list": lambda ip, port: f"open tcp {port} {ip} 1733600000",
    "masscan-ndjson": lambda ip, port: (
        f'{{"ip":"{ip}","timestamp":"0","port":{port},"proto":"tcp","rec_type":"status","data":{{"status":"open"}}}}'
    ),
    "masscan-stdout": lambda ip, port: f"Discovered open port {port}/tcp on {ip}",
    "masscan-grepable": lambda ip, port: f"Timestamp: 0\tHost: {ip} ()\tPorts: {port}/open/tcp////",
    "naabu-hostport": lambda ip, port: f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}",
    "naabu-json": lambda ip, port: f'{{"ip":"{ip}","port":{port},"protocol":"tcp"}}',
    "zmap-json": lambda ip, port: f'{{"saddr":"{ip}","sport":{port}}}',
    "nmap-grepable": lambda ip, port: f"Host: {ip} ()\tPorts: {port}/open/tcp//x///",
    "zgrab2-csv": lambda ip, port: f"{ip}, , , {port}",
}

addresses = st.one_of(
    st.ip_addresses(v=4), st.ip_addresses(v=6).filter(lambda address: address.ipv4_mapped is None)
).map(str)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(sorted(RENDER)),
    st.lists(st.tuples(addresses, st.integers(1, 65535)), min_size=1, max_size=5),
)
def test_any_ports_written_in_a_format_are_read_back(name: str, pairs: list[tuple[str, int]]) -> None:
    counts = OpenPortCounts()
    ports = list(read_open_ports([RENDER[name](ip, port) for ip, port in pairs], "-", counts=counts))
    assert counts.format == name
    assert [(p.ip, p.port) for p in ports] == list(dict.fromkeys(pairs))
