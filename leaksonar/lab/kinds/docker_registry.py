"""Docker registry (Debian docker-registry, Distribution 2.8): `registry-open` without authentication and
`registry-auth` behind htpasswd (the registry writes a random user into the missing htpasswd file itself:
nobody knows the password), each storing its images in the workdir. Seeded by pushing
`data.REGISTRY_IMAGES` through the registry's own HTTP API (seeding writes; inspection only reads)."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
from typing import Any

import httpx

from leaksonar.lab import data, servers
from leaksonar.lab.digest import Hasher
from leaksonar.lab.kinds.base import Launch, Started
from leaksonar.lab.seed import Seeded, database
from leaksonar.lab.spec import LabError, ServiceSpec

SERVICES = (
    ServiceSpec("registry-open", 67, 5000, "docker-registry", "none"),
    ServiceSpec("registry-auth", 68, 5000, "docker-registry", "required"),
)
MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG = "application/vnd.docker.container.image.v1+json"
LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def _config(launch: Launch) -> str:
    """Distribution's YAML (JSON is YAML): filesystem storage in the workdir, htpasswd for the auth one."""
    config: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(launch.workdir / "data")}},
        "http": {"addr": f"{launch.ip}:{launch.port}"},
    }
    if launch.name.endswith("-auth"):
        config["auth"] = {"htpasswd": {"realm": "leaksonar-lab", "path": str(launch.workdir / "htpasswd")}}
    return json.dumps(config)


def _digest(content: bytes) -> str:
    return f"sha256:{hashlib.sha256(content).hexdigest()}"


def _client(ip: str, port: int) -> httpx.Client:
    return httpx.Client(base_url=f"http://{ip}:{port}", timeout=10, trust_env=False)


def _push_blob(client: httpx.Client, repository: str, content: bytes) -> str:
    """A monolithic upload (POST then PUT with the digest); the blob's digest."""
    digest = _digest(content)
    started = client.post(f"/v2/{repository}/blobs/uploads/")
    if started.status_code != 202:
        raise LabError(f"the registry refused an upload: HTTP {started.status_code}")
    location = started.headers["location"]  # its query holds the upload's state: the digest is added
    done = client.put(f"{location}{'&' if '?' in location else '?'}digest={digest}", content=content)
    if done.status_code != 201:
        raise LabError(f"the registry refused a blob: HTTP {done.status_code}")
    return digest


def _push(client: httpx.Client, repository: str, tags: tuple[str, ...]) -> None:
    config, layer = data.registry_image(repository)
    config_bytes = json.dumps(config).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {
            "mediaType": CONFIG,
            "size": len(config_bytes),
            "digest": _push_blob(client, repository, config_bytes),
        },
        "layers": [{"mediaType": LAYER, "size": len(layer), "digest": _push_blob(client, repository, layer)}],
    }
    for tag in tags:
        put = client.put(
            f"/v2/{repository}/manifests/{tag}",
            content=json.dumps(manifest),
            headers={"Content-Type": MANIFEST},
        )
        if put.status_code != 201:
            raise LabError(f"the registry refused a manifest: HTTP {put.status_code}")


def _version(program: str) -> str:
    """The program's version ("2.8.2+ds1"): the API names none, so scans report the software unversioned."""
    said = subprocess.run(
        [program, "--version"], capture_output=True, text=True, timeout=10, check=True
    ).stdout
    return said.split()[-1].lstrip("v") if said.split() else ""


class DockerRegistry:
    protocol = "docker-registry"
    programs = ("docker-registry",)
    software = "docker-registry"
    user = None
    stop_signal = signal.SIGTERM
    standin = False

    def start(self, launch: Launch) -> Started:
        # The address in the config's name: how `lab down` and `status` recognise the server.
        config = launch.workdir / f"config-{launch.ip}.yml"
        config.write_text(_config(launch))
        return Started([servers.program("docker-registry", "docker-registry"), "serve", str(config)])

    def seed(self, launch: Launch, started: Started) -> Seeded:
        """Push the images; the auth service stays empty (nobody knows its password)."""
        version = _version(started.argv[0])
        if launch.name.endswith("-auth"):
            return Seeded(version, [database("", {})])
        with _client(launch.ip, launch.port) as client:
            for repository, tags in data.REGISTRY_IMAGES.items():
                _push(client, repository, tags)
        return Seeded(
            version, [database("", {name: len(tags) for name, tags in data.REGISTRY_IMAGES.items()})]
        )

    def digest(self, entry: dict[str, Any], h: Hasher) -> None:
        """The catalog, every repository's tags and every tag's manifest digest (unauthenticated reads)."""
        with _client(entry["ip"], entry["port"]) as client:
            catalog = client.get("/v2/_catalog")
            h.add("catalog", catalog.status_code, catalog.text)
            if catalog.status_code != 200:
                return
            for repository in catalog.json()["repositories"]:
                tags = client.get(f"/v2/{repository}/tags/list").json().get("tags") or []
                h.add(repository, sorted(tags))
                for tag in sorted(tags):
                    got = client.get(f"/v2/{repository}/manifests/{tag}", headers={"Accept": MANIFEST})
                    h.add(
                        f"{repository}:{tag}", got.headers.get("docker-content-digest"), _digest(got.content)
                    )


KIND = DockerRegistry()
