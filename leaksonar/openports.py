"""Open ports found by other scanners: masscan, zmap, naabu, nmap and zgrab2's input, read as a stream.

The format is detected from the first meaningful line (comments, blank lines and masscan's start-up lines
are not meaningful) and kept for the rest of the input. Lines are read one at a time and each open TCP
port is yielded as soon as its line is read, so the input may be a pipe from a scanner that still runs.
Memory is bounded: a line is at most `MAX_LINE` bytes, nmap's XML is parsed incrementally with entity
declarations refused, and duplicates are dropped within a window of the `dedup_window` most recent
distinct (address, port) pairs. A bad line raises `InputError` naming the line, never quoting it.
"""

from __future__ import annotations

import csv
import ipaddress
import json
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any
from xml.parsers import expat

from leaksonar.inputs import InputError

MAX_LINE = 1 << 16
"""Longest line read, in bytes with its end of line; a longer one is a bad line."""

MAX_XML_TOKEN = 1 << 20
"""Most XML bytes read without an element starting or ending; more is a bad input."""

MAX_XML_DEPTH = 64
"""Deepest XML element nesting read (nmap's is under 10)."""

DEDUP_WINDOW = 1 << 17
"""How many of the most recent distinct (address, port) pairs are remembered to drop duplicates."""


@dataclass(frozen=True)
class OpenPort:
    """An open TCP port: the address in compressed form (an IPv4-mapped one as IPv4), the port and the line
    that named it."""

    ip: str
    port: int
    line: int


@dataclass
class OpenPortCounts:
    """What a reading saw so far, filled in place while the ports are yielded: the format detected (None
    until a meaningful line is read), lines read, open ports yielded, duplicates dropped, bad lines skipped
    (with `skip_bad_lines`), and entries skipped because they are no open TCP port (UDP or SCTP, closed
    or filtered, masscan's banners, nmap's host status lines)."""

    format: str | None = None
    lines: int = 0
    ports: int = 0
    duplicates: int = 0
    bad_lines: int = 0
    skipped: int = 0


Entry = tuple[Any, Any, bool]
"""(address, port, is an open TCP port) as a line gives them, before they are checked."""

Parser = Callable[[str], Iterable[Entry]]


class _Bad(Exception):
    def __init__(self, reason: str, fatal: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.fatal = reason, fatal


def binary_lines(handle: IO[bytes], limit: int = MAX_LINE) -> Iterator[bytes]:
    """The lines of a binary stream, each read with at most `limit + 1` bytes held: the rest of a longer
    line is read and dropped, and the line yielded is then longer than `limit` (so it is a bad line)."""
    while line := handle.readline(limit + 1):
        if len(line) > limit and not line.endswith(b"\n"):
            while (rest := handle.readline(limit)) and not rest.endswith(b"\n"):
                pass
        yield line


def _text(raw: bytes | str) -> str:
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogateescape")
    if len(raw) > MAX_LINE:
        raise _Bad(f"longer than {MAX_LINE:,} bytes")
    try:
        return raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        raise _Bad("not UTF-8 text") from None


def _address(value: object) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The address; an IPv4-mapped IPv6 one as the IPv4 address it is (what a connection would reach)."""
    if not isinstance(value, str) or "%" in value:
        raise _Bad("has no valid IP address")
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        raise _Bad("has no valid IP address") from None
    return (address.ipv4_mapped or address) if isinstance(address, ipaddress.IPv6Address) else address


def _port(value: object, default: int | None) -> int:
    if value is None or value == "":
        if default is None:
            raise _Bad("gives no port and no default port was given", fatal=True)
        return default
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= 5:
        value = int(value)
    if type(value) is not int or not 1 <= value <= 65535:
        raise _Bad("has a port that is not a number within 1-65535")
    return value


# masscan -oL: `open tcp 80 192.0.2.1 1700000000` (also `closed`, `banner`, other protocols).
def _masscan_list(text: str) -> Iterable[Entry]:
    fields = text.split()
    if len(fields) < 4 or fields[0] not in ("open", "closed", "banner", "unknown"):
        raise _Bad("is not a masscan list record")
    return [(fields[3], fields[2], fields[0] == "open" and fields[1] == "tcp")]


_MASSCAN_STDOUT = re.compile(r"Discovered open port (\d+)/(\w+) on (\S+)")
_MASSCAN_PREAMBLE = ("Starting masscan", "Initiating ", "Scanning ")


def _masscan_stdout(text: str) -> Iterable[Entry]:
    if text.startswith(_MASSCAN_PREAMBLE):
        return []
    found = _MASSCAN_STDOUT.fullmatch(text.strip())
    if found is None:
        raise _Bad("is not a masscan 'Discovered open port' line")
    return [(found[3], found[1], found[2] == "tcp")]


# nmap and masscan -oG: tab-separated fields `Host: IP (name)`, `Ports: 22/open/tcp//ssh///, 80/closed/...`.
_GREPABLE_PORT = re.compile(r"(?:^|, )([^/,]*)/([^/]*)/([^/]*)/")


def _grepable(text: str) -> Iterable[Entry]:
    fields = dict(field.partition(": ")[::2] for field in text.split("\t"))
    host = fields.get("Host")
    if host is None:
        raise _Bad("is not a grepable Host record")
    address = host.split(" ", 1)[0]
    if "Ports" not in fields:
        return [(address, None, False)]  # Status: Up, or a masscan banner (Port:, Service:)
    ports = _GREPABLE_PORT.findall(fields["Ports"])
    if not ports:
        raise _Bad("has no port in its Ports field")
    return [(address, port, state == "open" and proto == "tcp") for port, state, proto in ports]


# JSON: masscan -oJ (an array, one host a line, commas between), masscan -oD, zmap -O json, naabu -json.
def _json_port(value: object) -> object:
    if isinstance(value, dict):  # naabu versions that write the port as an object
        return value.get("Port", value.get("port"))
    return value


def _is_tcp(record: dict[str, Any]) -> bool:
    proto = record.get("proto", record.get("protocol", "tcp"))
    return proto in ("tcp", 0)  # naabu's protocol enum: 0 is TCP


def _given(value: object) -> object:
    """A port a record must give (only zmap's may be left to the default port)."""
    if value is None:
        raise _Bad("has no port")
    return value


def _json_entries(record: object) -> list[Entry]:
    if not isinstance(record, dict):
        raise _Bad("is not a JSON object")
    if "saddr" in record:  # zmap
        return [(record["saddr"], record.get("sport"), record.get("success", True) not in (False, 0))]
    if "ports" in record:  # masscan -oJ
        if not isinstance(record["ports"], list) or not all(isinstance(p, dict) for p in record["ports"]):
            raise _Bad("has a ports field that is not a list of objects")
        return [
            (record.get("ip"), _given(entry.get("port")), entry.get("status") == "open" and _is_tcp(entry))
            for entry in record["ports"]
        ]
    if "rec_type" in record:  # masscan -oD
        data = record.get("data")
        status = data.get("status") if isinstance(data, dict) else None
        is_open = record["rec_type"] == "status" and status == "open" and _is_tcp(record)
        return [(record.get("ip"), _given(record.get("port")), is_open)]
    # naabu: `ip` (older versions: only `host`), `port` a number or an object
    return [(record.get("ip") or record.get("host"), _given(_json_port(record.get("port"))), _is_tcp(record))]


def _json_format(record: object) -> str:
    if isinstance(record, dict):
        if "saddr" in record:
            return "zmap-json"
        if "ports" in record:
            return "masscan-json"
        if "rec_type" in record:
            return "masscan-ndjson"
    return "naabu-json"


def _json_record(text: str) -> object | None:
    """The JSON object of a line, or None for the array's brackets, commas and masscan's end marker."""
    body = text.strip().strip(",").strip()
    if body in ("", "[", "]", "{finished: 1}"):
        return None
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise _Bad("is not valid JSON") from None


def _json(text: str) -> Iterable[Entry]:
    record = _json_record(text)
    return [] if record is None else _json_entries(record)


# zmap -O csv (a header naming saddr, maybe sport and success) and zgrab2's input `IP, DOMAIN, TAG, PORT`.
def _csv_fields(text: str) -> list[str]:
    try:
        return [field.strip() for field in next(csv.reader([text], skipinitialspace=True))]
    except (csv.Error, StopIteration):
        raise _Bad("is not a CSV record") from None


def _zmap_csv(header: list[str]) -> Parser:
    columns = [name.lower() for name in header]
    saddr = columns.index("saddr")
    sport = columns.index("sport") if "sport" in columns else None
    success = columns.index("success") if "success" in columns else None

    def parse(text: str) -> Iterable[Entry]:
        fields = _csv_fields(text)
        if len(fields) != len(columns):
            raise _Bad(f"has {len(fields)} fields where the header has {len(columns)}")
        is_open = success is None or fields[success] not in ("0", "false")
        return [(fields[saddr], None if sport is None else fields[sport], is_open)]

    return parse


def _zgrab2_csv(text: str) -> Iterable[Entry]:
    fields = _csv_fields(text)
    if len(fields) > 4:
        raise _Bad("has more than the 4 fields IP, DOMAIN, TAG, PORT")
    if not fields[0]:
        raise _Bad("has no IP address (host names are not looked up)")
    return [(fields[0], fields[3] if len(fields) == 4 else None, True)]


def _bare_address(text: str) -> Iterable[Entry]:
    return [(text, None, True)]


# naabu's default output: `host:port`, `[v6]:port`.
def _host_port(text: str) -> Iterable[Entry]:
    host, colon, port = text.strip().rpartition(":")
    if not colon:
        raise _Bad("is not host:port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return [(host, port, True)]


_HOST_PORT = re.compile(r"(\d{1,3}(?:\.\d{1,3}){3}|\[[0-9A-Fa-f:.]+\]):\d+")


class _NmapXml:
    """nmap -oX, fed line by line to expat: an open TCP port is a `state` inside a `port` inside a `host`.
    Only nmap's bare `<!DOCTYPE nmaprun>` is read: an internal subset, an external DTD, an entity
    declaration or reference is refused (nothing is ever expanded or fetched)."""

    def __init__(self) -> None:
        self.parser = expat.ParserCreate()
        self.parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        self.parser.StartDoctypeDeclHandler = self._doctype
        self.parser.EntityDeclHandler = self._refuse_entity
        self.parser.ExternalEntityRefHandler = self._refuse_entity
        self.parser.SkippedEntityHandler = self._refuse_entity
        self.parser.StartElementHandler = self._start
        self.parser.EndElementHandler = self._end
        self.host: str | None = None
        self.in_host = False
        self.port: tuple[str, str] | None = None
        self.entries: list[Entry] = []
        self.unmarked = 0
        self.depth = 0

    def _doctype(self, name: str, system: str | None, public: str | None, internal: bool) -> None:
        if internal or system or public:
            raise _Bad("has an XML DTD (refused)", fatal=True)

    def _refuse_entity(self, *args: object) -> None:
        raise _Bad("declares or references an XML entity (refused)", fatal=True)

    def _start(self, name: str, attrs: dict[str, str]) -> None:
        self.unmarked = 0
        self.depth += 1
        if self.depth > MAX_XML_DEPTH:
            raise _Bad(f"nests XML deeper than {MAX_XML_DEPTH} elements", fatal=True)
        if name == "host":
            self.in_host, self.host = True, None
        elif name == "address" and self.in_host and attrs.get("addrtype") in ("ipv4", "ipv6"):
            self.host = attrs.get("addr")
        elif name == "port" and self.in_host:
            self.port = (attrs.get("portid", ""), attrs.get("protocol", ""))
        elif name == "state" and self.port is not None:
            portid, proto = self.port
            self.entries.append((self.host, portid, attrs.get("state") == "open" and proto == "tcp"))

    def _end(self, name: str) -> None:
        self.unmarked = 0
        self.depth -= 1
        if name == "host":
            self.in_host, self.host = False, None
        elif name == "port":
            self.port = None

    def __call__(self, text: str, final: bool = False) -> Iterable[Entry]:
        self.unmarked += len(text) + 1
        if self.unmarked > MAX_XML_TOKEN:
            raise _Bad(f"continues an XML token longer than {MAX_XML_TOKEN:,} bytes", fatal=True)
        try:
            self.parser.Parse(text + "\n", final)
        except expat.ExpatError as exc:
            reason = "ends before the XML document does" if final else "is not well-formed XML"
            raise _Bad(f"{reason} ({expat.errors.messages.get(exc.code, 'error')})", fatal=True) from None
        entries, self.entries = self.entries, []
        return entries


def _is_comment(text: str) -> bool:
    """A blank line or a `#` comment (masscan's `#masscan` and `# end`, the `# Nmap ...` of -oG)."""
    line = text.strip()
    return not line or line.startswith("#")


def _detect(text: str) -> tuple[str, Parser]:
    """The format a meaningful first line shows, with its parser."""
    line = text.strip()
    if line.startswith(("<?xml", "<!DOCTYPE nmaprun", "<nmaprun")):
        return "nmap-xml", _NmapXml()
    if _HOST_PORT.fullmatch(line):
        return "naabu-hostport", _host_port
    if line.startswith(("[", "{", ",")):
        record = _json_record(line)
        return ("masscan-json" if record is None else _json_format(record)), _json
    if line.split(" ", 1)[0] in ("open", "closed", "banner"):
        return "masscan-list", _masscan_list
    if line.startswith("Timestamp: "):
        return "masscan-grepable", _grepable
    if line.startswith("Host: "):
        return "nmap-grepable", _grepable
    if line.startswith(("Discovered open port ", *_MASSCAN_PREAMBLE)):
        return "masscan-stdout", _masscan_stdout
    if "," in line:
        fields = _csv_fields(line)
        if "saddr" in (field.lower() for field in fields):
            return "zmap-csv", _skip_header(_zmap_csv(fields))
        return "zgrab2-csv", _zgrab2_csv
    try:
        _address(line)
        return "zmap-addresses", _bare_address
    except _Bad:
        pass
    raise _Bad("is in no known open-port format")


def _skip_header(parser: Parser) -> Parser:
    """`parser` for the lines after the header line it is first called with."""
    seen_header = False

    def parse(text: str) -> Iterable[Entry]:
        nonlocal seen_header
        if not seen_header:
            seen_header = True
            return []
        return parser(text)

    return parse


class _Window:
    """The `size` most recent distinct pairs: `add` says whether a pair is new."""

    def __init__(self, size: int) -> None:
        self.order: deque[tuple[str, int]] = deque()
        self.seen: set[tuple[str, int]] = set()
        self.size = size

    def add(self, pair: tuple[str, int]) -> bool:
        if pair in self.seen:
            return False
        if len(self.order) >= self.size:
            self.seen.discard(self.order.popleft())
        self.order.append(pair)
        self.seen.add(pair)
        return True


def read_open_ports(
    lines: Iterable[bytes | str],
    source: str,
    *,
    default_port: int | None = None,
    skip_bad_lines: bool = False,
    counts: OpenPortCounts | None = None,
    dedup_window: int = DEDUP_WINDOW,
) -> Iterator[OpenPort]:
    """Each open TCP port of another scanner's output, in input order, as soon as its line is read.

    `source` names the input in errors (a path, or `-`). `default_port` is the port of lines that give
    none (zmap's bare addresses and CSV without `sport`, zgrab2 lines without PORT: zmap's `-p`).
    `counts`, if given, is filled in place. A bad line raises InputError(source, line, reason), or with
    `skip_bad_lines` is counted and skipped; a line without a port when no default port is given, and
    malformed or hostile XML, always raise.
    """
    counts = counts if counts is not None else OpenPortCounts()
    window = _Window(dedup_window)
    parser: Parser | None = None
    for number, raw in enumerate(lines, 1):
        counts.lines += 1
        try:
            text = _text(raw)
            if not isinstance(parser, _NmapXml) and _is_comment(text):
                continue
            if parser is None:
                counts.format, parser = _detect(text)
            for address, port, is_open in parser(text):
                if not is_open:
                    counts.skipped += 1
                    continue
                ip = _address(address)
                pair = (str(ip), _port(port, default_port))
                if not window.add(pair):
                    counts.duplicates += 1
                    continue
                counts.ports += 1
                yield OpenPort(pair[0], pair[1], number)
        except _Bad as exc:
            if exc.fatal or not skip_bad_lines:
                raise InputError(source, number, exc.reason) from None
            counts.bad_lines += 1
    if isinstance(parser, _NmapXml):
        try:
            parser("", final=True)
        except _Bad as exc:
            raise InputError(source, counts.lines, exc.reason) from None
