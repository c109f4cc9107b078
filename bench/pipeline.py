"""Full-pipeline benchmark: the whole lab, leaksonar's scan against nmap -sV with its read-only NSE scripts.

    .venv/bin/python bench/pipeline.py [--lab-dir DIR] [--base 127.x.0.0]

Starts a lab (as `leaksonar lab up` does) on a free 127.x base (or uses the running lab in --lab-dir),
times both tools as whole commands over the same addresses (the lab's /24) and ports (the lab's ports),
stops the lab it started, and compares per service the facts each tool reported with the lab manifest (the
ground truth): the protocol/product named, the version, whether authentication is required, and the
databases / collections / keys and their rows. Prints a table and writes bench/results/pipeline.json.

nmap runs only scripts that read (categories safe/discovery/default/version), never brute-force or
intrusive ones; see NSE_SCRIPTS and NSE_LEFT_OUT.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import LEAKSONAR, LOOPBACK, describe, machine, run, running_lab, save

NSE_SCRIPTS = (
    "redis-info",  # discovery, safe: INFO
    "mongodb-info",  # default, discovery, safe: buildInfo, serverStatus
    "mongodb-databases",  # default, discovery, safe: listDatabases
    "mysql-info",  # default, discovery, safe: the server greeting
    "memcached-info",  # discovery, safe: stats
    "ftp-anon",  # default, auth, safe: anonymous login and the root's LIST
    "hadoop-namenode-info",  # default, discovery, safe: GET /dfshealth.jsp (Hadoop 1.x's status page)
    "rsync-list-modules",  # discovery, safe: the module list (its library rejects rsync 3.2+ greetings)
    "smb-protocols",  # discovery, safe: the dialects the server speaks
    "smb2-security-mode",  # default, discovery, safe: whether signing is required
    "couchdb-databases",  # discovery, safe: GET /_all_dbs
    "couchdb-stats",  # discovery, safe: GET /_stats
    "cassandra-info",  # default, discovery, safe: cluster name and version (Thrift port)
    "http-title",  # default, discovery, safe
    "http-server-header",  # version
    "http-headers",  # discovery, safe
)
NSE_LEFT_OUT = {
    "redis-brute, mongodb-brute, mysql-brute, pgsql-brute, cassandra-brute": "guess passwords",
    "mysql-empty-password": "intrusive: logs in as root and anonymous with empty passwords",
    "mysql-databases, mysql-variables, mysql-users": "intrusive, and need credentials",
    "rsync-brute": "guesses passwords",
    "smb-enum-shares": "intrusive: writes and deletes a test file in every share it finds",
    "smb-ls": "lists only the shares smb-enum-shares found (or shares named in its arguments)",
}
"""Matching scripts not run, and why (there is no read-only PostgreSQL or Elasticsearch script)."""

KEYWORDS = {
    "redis": ("redis",),
    "postgresql": ("postgres",),
    "mysql": ("mysql", "mariadb"),
    "memcached": ("memcache",),
    "mongodb": ("mongo",),
    "elasticsearch": ("elasticsearch", "opensearch"),
    "kibana": ("kibana",),
    "cassandra": ("cassandra",),
    "couchdb": ("couchdb",),
    "clickhouse": ("clickhouse",),
    "etcd": ("etcd",),
    "influxdb": ("influx",),
    "ftp": ("ftp",),
    "hdfs": ("hadoop", "hdfs"),
    "s3": ("s3", "amazon", "minio"),  # nmap has no S3 script: -sV alone
    "rsync": ("rsync",),
    "smb": ("microsoft-ds", "samba", "smb"),
    "docker-registry": ("docker-registry", "docker registry"),  # nmap has no registry script or -sV match
}
"""Words that name each lab protocol in nmap's service name or product."""


@dataclass
class Facts:
    """What one tool reported about one service."""

    product: str = ""
    """The protocol/product it named ("" if none; a port-number guess does not count)."""
    version: str = ""
    auth: str = "unknown"
    """"none" or "required" when the tool says so, else "unknown"."""
    names: list[str] = field(default_factory=list)
    """Databases / collections / indices / keyspaces it listed."""
    rows: int | None = None
    extra: list[str] = field(default_factory=list)
    """Other facts reported (leaksonar: detail keys; nmap: "script: field" of each script's output)."""


def lab_ports(manifest: dict[str, Any]) -> list[int]:
    return sorted({service["port"] for service in manifest["services"]})


def truth(service: dict[str, Any]) -> Facts:
    """The manifest's facts; the data of a service that asks for a password is not expected."""
    facts = Facts(service["protocol"], service["software"]["version"], service["auth"])
    if service["auth"] == "none":
        databases = service["databases"]
        facts.names = [d["name"] for d in databases if d["name"]] or [
            c["name"] for d in databases for c in d["collections"]
        ]
        facts.rows = sum(c["rows"] for d in databases for c in d["collections"])
    return facts


def leaksonar_facts(record: dict[str, Any]) -> Facts:
    software = record.get("software") or {}
    collections = record.get("collections") or []
    names = sorted(
        {c["database"] for c in collections if c.get("database")} | {c["name"] for c in collections}
    )
    dataset = record.get("dataset") or {}
    return Facts(
        product=f"{record['protocol']} ({software.get('name', '')})",
        version=software.get("version") or "",
        auth=record.get("auth", "unknown"),
        names=names,
        rows=dataset.get("rows"),
        extra=sorted((record.get("details") or {}).keys()) if isinstance(record.get("details"), dict) else [],
    )


def _script_auth(script: str, output: str) -> str:
    """Whether an NSE script's output says the service asks for credentials."""
    text = output.lower()
    if "requires authentication" in text or "authentication required" in text or "noauth" in text:
        return "required"
    if script == "memcached-info" and "authentication: no" in text:
        return "none"
    if script == "memcached-info" and "authentication: yes" in text:
        return "required"
    if script == "redis-info" and "version:" in text:
        return "none"  # INFO answered without AUTH
    if script in ("mongodb-databases", "couchdb-databases"):
        return "none"  # listed the databases without credentials
    if script == "ftp-anon" and "anonymous ftp login allowed" in text:
        return "none"
    return "unknown"


def nmap_facts(port: ET.Element) -> Facts:
    facts = Facts()
    service = port.find("service")
    if service is not None and service.get("method") == "probed":
        facts.product = " ".join(filter(None, (service.get("name"), service.get("product"))))
        facts.version = " ".join(filter(None, (service.get("product"), service.get("version"))))
    for script in port.iter("script"):
        name, output = script.get("id", ""), script.get("output", "")
        if name == "fingerprint-strings" or "ERROR" in output:
            continue  # raw replies nmap did not recognise, or a script that failed
        facts.extra += [f"{name}: {key}" for key in re.findall(r"^  (\w[^:=\n]*?)(?::| =)", output, re.M)]
        auth = _script_auth(name, output)
        if auth != "unknown":
            facts.auth = auth
        for line in output.splitlines():
            key, _, value = line.strip().partition(" = " if " = " in line else ": ")
            if key.lower() == "version" and value:
                facts.version = f"{facts.version} {value}".strip()
            if name == "mongodb-databases" and key == "name":
                facts.names.append(value)
        if name == "couchdb-databases":
            facts.names += re.findall(r"^\s*\d+ = (\S+)$", output, re.MULTILINE)
        if name == "ftp-anon":  # the root's `ls -l` lines: the top directories
            facts.names += re.findall(r"^d\S{9}\s.*\s(\S+)$", output, re.MULTILINE)
        if name == "rsync-list-modules":  # `name<TAB>comment` lines: the modules
            facts.names += re.findall(r"^\s*(\S+)\s*\t", output, re.MULTILINE)
    return facts


def named(facts: Facts, protocol: str) -> bool:
    return any(word in facts.product.lower() for word in KEYWORDS[protocol])


def verdicts(found: Facts, expected: Facts) -> dict[str, Any]:
    """Which of the ground truth's facts a tool's report holds."""
    listed = {n.lower() for n in found.names}
    return {
        "product": named(found, expected.product),
        "version": bool(expected.version) and expected.version in found.version,
        "auth": found.auth == expected.auth,
        "names": sum(n.lower() in listed for n in expected.names),
        "names_total": len(expected.names),
        "rows": found.rows,
        "rows_total": expected.rows,
    }


def scan_commands(
    targets: list[str], ports: list[int], tmp: Path, scripts: tuple[str, ...] = NSE_SCRIPTS
) -> tuple[list[str], list[str]]:
    """leaksonar's scan and nmap -sV with `scripts`, of `targets` x `ports`, writing their output in `tmp`."""
    port_list = ",".join(map(str, ports))
    ours = [
        LEAKSONAR, "scan", *targets, "-p", port_list, "--db", str(tmp / "pipeline.db"),
        "--jsonl", str(tmp / "findings.jsonl"), "--quiet", "--scope", LOOPBACK,
    ]  # fmt: skip
    theirs = [
        "nmap", "-sT", "-Pn", "-n", "-sV", "--script", ",".join(scripts),
        "-p", port_list, *targets, "-oX", str(tmp / "nmap.xml"),
    ]  # fmt: skip
    return ours, theirs


Address = tuple[str, int]


def leaksonar_records(tmp: Path) -> dict[Address, dict[str, Any]]:
    """The records leaksonar's scan wrote in `tmp`, by (ip, port)."""
    records = (
        json.loads(line) for line in (tmp / "findings.jsonl").read_text().splitlines()[1:]
    )  # 1st: the scan
    return {(record["ip"], record["port"]): record for record in records}


def nmap_open_ports(tmp: Path) -> dict[Address, ET.Element]:
    """The open ports of nmap's XML report in `tmp`, by (ip, port)."""
    ports = {}
    for host in ET.parse(tmp / "nmap.xml").getroot().iter("host"):
        address = host.find("address")
        assert address is not None
        for port in host.iter("port"):
            state = port.find("state")
            if state is not None and state.get("state") == "open":
                ports[(address.get("addr", ""), int(port.get("portid", 0)))] = port
    return ports


def compare(services: list[dict[str, Any]], tmp: Path) -> list[dict[str, Any]]:
    """Per manifest service, the facts each tool's output in `tmp` holds, against the manifest's."""
    ours = {key: leaksonar_facts(record) for key, record in leaksonar_records(tmp).items()}
    theirs = {key: nmap_facts(port) for key, port in nmap_open_ports(tmp).items()}
    rows = []
    for service in services:
        key = (service["ip"], service["port"])
        expected = truth(service)
        lk, nm = ours.get(key, Facts()), theirs.get(key, Facts())
        rows.append(
            {
                "service": service["name"],
                "address": f"{service['ip']}:{service['port']}",
                "truth": asdict(expected),
                "leaksonar": {**verdicts(lk, expected), "reported": asdict(lk)},
                "nmap": {**verdicts(nm, expected), "reported": asdict(nm)},
            }
        )
    return rows


def _mark(value: bool) -> str:
    return "yes" if value else "-"


def print_table(rows: list[dict[str, Any]]) -> list[str]:
    """Print the per-service comparison; return the facts nmap found and leaksonar did not."""
    print(f"{'service':<18} {'protocol':^9} {'version':^9} {'auth':^9} {'names':^11} {'rows (L/truth)':>16}")
    print(f"{'':<18} {'L    N':^9} {'L    N':^9} {'L    N':^9} {'L     N':^11}")
    nmap_only = []
    for row in rows:
        lk, nm = row["leaksonar"], row["nmap"]
        cells = []
        for fact in ("product", "version", "auth"):
            cells.append(f"{_mark(lk[fact]):>3}  {_mark(nm[fact]):<3}")
            if nm[fact] and not lk[fact]:
                nmap_only.append(f"{row['service']}: {fact}")
        total = lk["names_total"]
        names = f"{lk['names']}/{total}  {nm['names']}/{total}" if total else "-"
        if nm["names"] > lk["names"]:
            nmap_only.append(f"{row['service']}: {nm['names']} names")
        rows_text = f"{lk['rows'] if lk['rows'] is not None else '-'}/{lk['rows_total'] or '-'}"
        print(f"{row['service']:<18} {cells[0]:^9} {cells[1]:^9} {cells[2]:^9} {names:^11} {rows_text:>16}")
    return nmap_only


def totals(rows: list[dict[str, Any]], tool: str) -> dict[str, int]:
    result = {fact: sum(bool(r[tool][fact]) for r in rows) for fact in ("product", "version", "auth")}
    result["names"] = sum(r[tool]["names"] for r in rows)
    result["names_total"] = sum(r[tool]["names_total"] for r in rows)
    result["rows_counted"] = sum(  # services whose row count the tool reported exactly
        r[tool]["rows_total"] is not None and r[tool]["rows"] == r[tool]["rows_total"] for r in rows
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab-dir", type=Path, help="use this running lab instead of starting one")
    parser.add_argument("--base", help="base of the lab to start (default: a free 127.x.0.0)")
    args = parser.parse_args()
    if shutil.which("nmap") is None:
        sys.exit("nmap is not installed (make setup installs it)")
    with tempfile.TemporaryDirectory(prefix="leaksonar-pipeline-") as tmp_name:
        tmp = Path(tmp_name)
        with running_lab(tmp, args.lab_dir, args.base) as manifest:
            block = manifest["base"].rsplit(".", 1)[0] + ".0/24"
            ports = lab_ports(manifest)
            ours_cmd, theirs_cmd = scan_commands([block], ports, tmp)
            ours, ours_rss, _ = run(ours_cmd)
            theirs, theirs_rss, _ = run(theirs_cmd)
            rows = compare(manifest["services"], tmp)
    print(f"full pipeline: {len(manifest['services'])} lab services, {block} x {len(ports)} ports")
    print(f"  machine: {describe(machine())}")
    print(f"  leaksonar {ours:7.2f} s  rss {ours_rss:.0f} MB   {' '.join(ours_cmd[:2])} ...")
    print(f"  nmap      {theirs:7.2f} s  rss {theirs_rss:.0f} MB   nmap -sT -Pn -n -sV --script ...")
    print(f"  ratio (nmap time / leaksonar time): {theirs / ours:.1f}x")
    print("facts found (L: leaksonar, N: nmap; names: the lab's databases/collections each listed):")
    nmap_only = print_table(rows)
    ours_total, theirs_total = totals(rows, "leaksonar"), totals(rows, "nmap")
    n = len(rows)
    print(
        f"  totals: protocol L {ours_total['product']}/{n} N {theirs_total['product']}/{n}; "
        f"version L {ours_total['version']}/{n} N {theirs_total['version']}/{n}; "
        f"auth L {ours_total['auth']}/{n} N {theirs_total['auth']}/{n}; "
        f"names L {ours_total['names']} N {theirs_total['names']} of {ours_total['names_total']}; "
        f"exact row counts L {ours_total['rows_counted']} N {theirs_total['rows_counted']}"
    )
    print(f"  nmap found where leaksonar did not: {', '.join(nmap_only) or 'nothing'}")
    fields: dict[str, set[str]] = {}
    for row in rows:
        for extra in row["nmap"]["reported"]["extra"]:
            script, _, key = extra.partition(": ")
            if not key.strip().isdigit():
                fields.setdefault(script, set()).add(key.strip())
    print("  other fields nmap's scripts printed (not compared above):")
    for script, keys in sorted(fields.items()):
        print(f"    {script}: {', '.join(sorted(keys))}")
    save(
        "pipeline",
        {
            "block": block,
            "ports": ports,
            "services": n,
            "leaksonar_command": ours_cmd,
            "nmap_command": theirs_cmd,
            "nse_scripts": list(NSE_SCRIPTS),
            "nse_left_out": NSE_LEFT_OUT,
            "leaksonar_s": round(ours, 2),
            "nmap_s": round(theirs, 2),
            "ratio": round(theirs / ours, 1),
            "leaksonar_rss_mb": round(ours_rss, 1),
            "nmap_rss_mb": round(theirs_rss, 1),
            "totals": {"leaksonar": ours_total, "nmap": theirs_total},
            "nmap_only": nmap_only,
            "nmap_other_fields": {script: sorted(keys) for script, keys in fields.items()},
            "services_compared": rows,
        },
    )


if __name__ == "__main__":
    main()
