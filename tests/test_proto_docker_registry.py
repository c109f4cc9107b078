"""Docker registry: identification from `/v2/` (and from Distribution's empty `GET /` on an unusual port),
read-only inspection of the lab's registries (open, and behind htpasswd), and scripted hostile registries
(endless catalogs, links to other hosts, odd names, huge configs, image indexes, refusals)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import hostile
import pytest
from moved import moved_server
from replies import CATALOGUE, REGISTRY_ROOT, REGISTRY_V2, REGISTRY_V2_BASIC, REGISTRY_V2_BEARER, http_reply

from leaksonar.assess import assess
from leaksonar.lab import data, lab_digest
from leaksonar.model import ErrorKind, Identity, Inspection, Limits, Software
from leaksonar.protocols import docker_registry
from leaksonar.protocols.base import Endpoint
from leaksonar.protocols.docker_registry import PROTOCOL, looks_like
from leaksonar.scan.identify import identify

FAST = Limits(timeout=1.0, service_budget=5.0)
LabService = Callable[[str], dict[str, Any]]
API = {"Docker-Distribution-Api-Version": "registry/2.0", "Content-Type": "application/json"}


# --- match ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "auth"),
    [(REGISTRY_V2, "unknown"), (REGISTRY_V2_BASIC, "required"), (REGISTRY_V2_BEARER, "required")],
)
def test_match_names_a_registry_from_its_api_header(reply: bytes, auth: str) -> None:
    identity = PROTOCOL.match(reply)
    assert identity is not None
    assert (identity.protocol, identity.software, identity.auth) == (
        "docker-registry",
        Software("docker-registry"),
        auth,
    )


def test_the_root_of_a_registry_is_not_matched_but_looks_like_one() -> None:
    assert PROTOCOL.match(REGISTRY_ROOT) is None
    assert looks_like(REGISTRY_ROOT)
    assert looks_like(http_reply(302, {"Location": "/v2/"}))


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(reply, id=f"{owner}: {name}")
        for owner, named in CATALOGUE.items()
        for name, reply in named.items()
        if reply != REGISTRY_ROOT
    ]
    + [http_reply(200, {"Cache-Control": "no-cache"}, b"<html>"), http_reply(302, {"Location": "/login"})],
)
def test_no_other_answer_costs_a_second_request(reply: bytes) -> None:
    assert not looks_like(reply)


# --- the lab --------------------------------------------------------------------------------------


def inspect_lab(entry: dict[str, Any], port: int | None = None) -> Inspection:
    endpoint = Endpoint(entry["ip"], port or entry["port"])
    return asyncio.run(PROTOCOL.inspect(endpoint, Identity("docker-registry"), Limits()))


def test_the_open_registry_is_listed_measured_and_its_secrets_found(lab_service: LabService) -> None:
    entry = lab_service("registry-open")
    before = lab_digest(entry)
    found = inspect_lab(entry)
    assert lab_digest(entry) == before

    assert (found.protocol, found.auth, found.exposed, found.errors) == ("docker-registry", "none", True, ())
    expected = {c["name"]: c["rows"] for db in entry["databases"] for c in db["collections"]}
    assert {c.name: c.rows for c in found.collections} == expected
    assert (found.databases, found.rows, found.rows_estimated) == (1, sum(expected.values()), False)
    for repository in data.REGISTRY_IMAGES:
        config, layer = data.registry_image(repository)
        (collection,) = (c for c in found.collections if c.name == repository)
        assert collection.size_bytes == len(json.dumps(config).encode()) + len(layer)
        assert "DB_PASSWORD" in collection.fields
    assert found.size_bytes == sum(c.size_bytes or 0 for c in found.collections)
    (image,) = next(s for s in found.samples if s.collection == "shop/api").documents
    assert image["image"] == "shop/api:latest" and sorted(image["tags"]) == ["1.0", "1.1", "latest"]

    assessment = assess(found)
    assert {"password", "secret"} <= set(assessment.pii)
    assert assessment.severity in ("high", "critical")


def test_the_lab_registries_are_identified(lab_service: LabService) -> None:
    for name, auth in (("registry-open", "unknown"), ("registry-auth", "required")):
        entry = lab_service(name)
        identity = asyncio.run(identify(entry["ip"], entry["port"], None, FAST))
        assert (identity.protocol, identity.auth) == ("docker-registry", auth)


def test_the_htpasswd_registry_is_auth_required(lab_service: LabService) -> None:
    found = inspect_lab(lab_service("registry-auth"))
    assert (found.auth, found.exposed, found.collections, found.samples, found.errors) == (
        "required",
        False,
        (),
        (),
        (),
    )


@pytest.fixture(scope="module")
def moved(lab: dict[str, Any]) -> Iterator[tuple[dict[str, Any], int]]:
    """A second registry of the lab's kind, seeded alike, on registry-open's address, port 5443."""
    with moved_server(lab, "registry-open", 5443, seeded=True) as service:
        yield service, 5443


def test_a_registry_on_an_unusual_port_is_identified_from_its_root(moved: tuple[dict[str, Any], int]) -> None:
    service, port = moved
    assert port not in PROTOCOL.default_ports
    identity = asyncio.run(identify(service["ip"], port, None, FAST))
    assert (identity.protocol, identity.software) == ("docker-registry", Software("docker-registry"))
    assert inspect_lab(service, port).rows == inspect_lab(service).rows


# --- scripted and hostile registries --------------------------------------------------------------


def _json(body: Any, headers: dict[str, str] | None = None, status: int = 200) -> bytes:
    return http_reply(status, {**API, **(headers or {})}, body)


CONFIG = {"config": {"Env": ["PATH=/bin", "DB_PASSWORD=Zx81kQ0plm", "API_KEY=9f8e7d6c5b4a39281706"]}}
CONFIG_DIGEST = "sha256:" + "c" * 64
MANIFEST = {
    "schemaVersion": 2,
    "config": {"size": 300, "digest": CONFIG_DIGEST},
    "layers": [{"size": 1000, "digest": "sha256:" + "1" * 64}, {"size": 234, "digest": "sha256:" + "2" * 64}],
}
INDEX = {
    "manifests": [
        {"digest": "sha256:" + "a" * 64, "platform": {"os": "unknown", "architecture": "unknown"}},
        {"digest": "sha256:" + "b" * 64, "platform": {"os": "linux", "architecture": "amd64"}},
    ]
}


def registry(answers: dict[str, bytes], seen: list[bytes] | None = None) -> hostile.Handler:
    """A registry answering the targets of `answers`, 404 to anything else; every request noted in `seen`."""
    fixed = {"/v2/": _json({}), **answers}

    def reply(request: tuple[str, str, bytes]) -> bytes:
        return fixed.get(request[1], _json({"errors": []}, status=404))

    return hostile.scripted(hostile.read_http, reply, lambda r: f"{r[0]} {r[1]}".encode(), seen)


def run(handler: hostile.Handler, limits: Limits = FAST) -> tuple[Inspection, float]:
    return hostile.run(PROTOCOL, handler, Identity("docker-registry"), limits)


def test_manifests_and_configs_are_read_with_gets_only_and_layers_never() -> None:
    seen: list[bytes] = []
    answers = {
        "/v2/_catalog?n=100": _json({"repositories": ["shop/api", "multi"]}),
        "/v2/shop/api/tags/list": _json({"name": "shop/api", "tags": ["v1", "latest"]}),
        "/v2/shop/api/manifests/latest": _json(MANIFEST, {"Docker-Content-Digest": "sha256:" + "d" * 64}),
        "/v2/shop/api/manifests/v1": _json(MANIFEST, {"Docker-Content-Digest": "sha256:" + "d" * 64}),
        f"/v2/shop/api/blobs/{CONFIG_DIGEST}": _json(CONFIG),
        "/v2/multi/tags/list": _json({"tags": ["1"]}),
        "/v2/multi/manifests/1": _json(INDEX),
        f"/v2/multi/manifests/sha256:{'b' * 64}": _json(MANIFEST),
        f"/v2/multi/blobs/{CONFIG_DIGEST}": _json(CONFIG),
    }
    found, _ = run(registry(answers, seen))
    assert found.errors == () and all(s.startswith(b"GET ") for s in seen)
    assert not any(b"/blobs/sha256:1" in s or b"/blobs/sha256:2" in s for s in seen)
    assert f"GET /v2/multi/manifests/sha256:{'b' * 64}".encode() in seen
    assert f"GET /v2/multi/manifests/sha256:{'a' * 64}".encode() not in seen
    assert {c.name: (c.rows, c.size_bytes) for c in found.collections} == {
        "shop/api": (2, 1534),  # two tags of one image
        "multi": (1, 1534),
    }
    (image,) = found.samples[0].documents
    assert (image["image"], image["tags"], image["size"]) == ("shop/api:latest", ["latest", "v1"], 1534)
    assert {"password", "secret"} <= set(assess(found).pii)


def test_an_endless_catalog_stops_at_its_page_cap() -> None:
    seen: list[bytes] = []

    def pages(target: str) -> bytes:
        page = int(target.rsplit("last=r", 1)[-1]) if "last=r" in target else 0
        names = [f"r{page * 100 + i}" for i in range(1, 101)]
        return _json({"repositories": names}, {"Link": f'</v2/_catalog?n=100&last=r{page + 1}>; rel="next"'})

    handler = hostile.scripted(
        hostile.read_http,
        lambda r: _json({}) if r[1] == "/v2/" else pages(r[1]) if "_catalog" in r[1] else _json({"tags": []}),
        lambda r: r[1].encode(),
        seen,
    )
    found, elapsed = run(handler, Limits(timeout=1.0, service_budget=10.0))
    assert sum(b"_catalog" in s for s in seen) == docker_registry.MAX_CATALOG_PAGES
    assert len(found.collections) == Limits().max_collections and found.rows_estimated
    assert ErrorKind.OVER_LIMIT in hostile.kinds(found) and elapsed < 10


def test_links_to_other_hosts_odd_names_and_huge_names_are_never_requested() -> None:
    seen: list[bytes] = []
    odd = ["../../etc", "UPPER", "a" * 5000, "x/../y", "ok\r\nHost: evil", 7]
    answers = {
        "/v2/_catalog?n=100": _json(
            {"repositories": ["good", *odd]},
            {"Link": '<http://127.0.0.2/v2/_catalog?n=100&last=z>; rel="next"'},
        ),
        "/v2/good/tags/list": _json({"tags": ["1", "../x", "t" * 300]}),
    }
    found, _ = run(registry(answers, seen))
    assert [c.name for c in found.collections] == ["good"] and found.rows_estimated
    assert sum(b"_catalog" in s for s in seen) == 1
    assert [s for s in seen if b"/manifests/" in s] == [b"GET /v2/good/manifests/1"]


def test_a_config_over_its_cap_is_not_read_or_is_cut() -> None:
    announced = {**MANIFEST, "config": {"size": 10_000_000, "digest": CONFIG_DIGEST}}
    seen: list[bytes] = []
    answers = {
        "/v2/_catalog?n=100": _json({"repositories": ["big", "liar"]}),
        "/v2/big/tags/list": _json({"tags": ["1"]}),
        "/v2/big/manifests/1": _json(announced),
        "/v2/liar/tags/list": _json({"tags": ["1"]}),
        "/v2/liar/manifests/1": _json(MANIFEST),
        f"/v2/liar/blobs/{CONFIG_DIGEST}": _json({"config": {"Env": ["X=" + "y" * 200_000]}}),
    }
    found, _ = run(registry(answers, seen))
    assert not any(b"/v2/big/blobs" in s for s in seen)
    assert {c.name: c.size_bytes for c in found.collections} == {"big": 10_001_234, "liar": 1534}
    assert hostile.kinds(found) == [ErrorKind.OVER_LIMIT]
    assert all(d["env"] == {} for s in found.samples for d in s.documents)


def test_a_catalog_behind_a_login_is_auth_required() -> None:
    found, _ = run(registry({"/v2/_catalog?n=100": _json({"errors": []}, status=401)}))
    assert (found.auth, found.collections, hostile.kinds(found)) == (
        "required",
        (),
        [ErrorKind.AUTH_REQUIRED],
    )


def test_v2_behind_a_token_is_auth_required() -> None:
    found, _ = run(registry({"/v2/": REGISTRY_V2_BEARER}))
    assert (found.auth, found.exposed, found.collections) == ("required", False, ())


def test_malformed_tags_and_manifests_are_errors_and_the_rest_is_kept() -> None:
    answers = {
        "/v2/_catalog?n=100": _json({"repositories": ["a", "b", "c"]}),
        "/v2/a/tags/list": _json({"tags": "v1"}),
        "/v2/b/tags/list": _json({"tags": ["1"]}),
        "/v2/b/manifests/1": http_reply(200, API, b"[[[["),
        "/v2/c/tags/list": _json({"tags": None}),
    }
    found, _ = run(registry(answers))
    assert {c.name: c.rows for c in found.collections} == {"a": None, "b": 1, "c": 0}
    assert hostile.kinds(found) == [ErrorKind.PROTOCOL_ERROR, ErrorKind.PROTOCOL_ERROR]
    assert found.rows_estimated


def test_a_slow_registry_ends_in_time_with_what_it_read() -> None:
    answers = {
        "/v2/_catalog?n=100": _json({"repositories": [f"r{i}" for i in range(50)]}),
        **{f"/v2/r{i}/tags/list": _json({"tags": ["1"]}) for i in range(50)},
    }
    seen: list[bytes] = []
    slow = {"/v2/": _json({}), **answers}
    handler = hostile.scripted(
        hostile.read_http,
        lambda r: slow.get(r[1], _json({}, status=404)),
        lambda r: r[1].encode(),
        seen,
        delay=0.3,
    )
    found, elapsed = run(handler, Limits(timeout=1.0, service_budget=2.0))
    assert elapsed < 3.0 and found.auth == "none"
    assert ErrorKind.TIMEOUT in hostile.kinds(found)


@pytest.mark.parametrize(
    "second",
    [_json({"errors": []}, status=401), _json({"errors": []}, status=500), http_reply(200, API, b"[[[[")],
)
def test_a_catalog_page_refused_or_broken_after_the_first_keeps_what_was_listed(second: bytes) -> None:
    answers = {
        "/v2/_catalog?n=100": _json(
            {"repositories": ["a"]}, {"Link": '</v2/_catalog?n=100&last=a>; rel="next"'}
        ),
        "/v2/_catalog?n=100&last=a": second,
        "/v2/a/tags/list": _json({"tags": []}),
    }
    found, _ = run(registry(answers))
    assert (found.auth, [c.name for c in found.collections], found.rows_estimated) == ("none", ["a"], True)
    assert len(found.errors) == 1 and "catalog" in found.errors[0].message
