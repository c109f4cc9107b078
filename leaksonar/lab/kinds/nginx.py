"""nginx (Debian nginx) as a TLS proxy on port 443 in front of a plaintext lab service, as consoles are
commonly published: opensearch-tls fronts opensearch-open, kibana-tls fronts kibana-open (self-signed).

The services are the proxied ones behind TLS: the manifest's protocol, software and databases are the
backend's (`ServiceSpec.kind` says nginx runs them); the backend's headers (Kibana's `kbn-name`) pass
through. nginx runs in the foreground with its configuration, pid, logs and temporary files under the
service's directory and reads no system configuration. Its configuration file is named after the
service's address, so that the address is on the master's command line for `lab down` to recognise.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

from leaksonar.lab import kinds, servers
from leaksonar.lab.digest import Hasher
from leaksonar.lab.kinds import kibana, opensearch
from leaksonar.lab.kinds.base import Launch, Started
from leaksonar.lab.seed import Seeded, database
from leaksonar.lab.spec import ServiceSpec, TlsSpec, neighbour_ip
from leaksonar.lab.standins import kibana as kibana_standin

_OPENSEARCH, _KIBANA = opensearch.SERVICES[0], kibana.SERVICES[0]
SERVICES = (
    ServiceSpec(
        "opensearch-tls",
        41,
        443,
        "elasticsearch",
        "none",
        TlsSpec(("search", "es"), _OPENSEARCH.name, required=True),
        kind="nginx",
    ),
    ServiceSpec(
        "kibana-tls",
        42,
        443,
        "kibana",
        "none",
        TlsSpec(("kibana",), _KIBANA.name, required=True, self_signed=True),
        kind="nginx",
    ),
)
_BACKENDS = {"opensearch-tls": _OPENSEARCH, "kibana-tls": _KIBANA}
"""TLS service -> the plaintext service it fronts."""
_TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def nginx_conf(launch: Launch, backend: str, cert: str, key: str) -> str:
    """A TLS server on launch.ip:launch.port proxying to `backend` (http://IP:PORT), without buffering
    to disk (worker processes may run as another user, who cannot write the service's directory)."""
    temp = "\n".join(f"    {name}_temp_path {launch.workdir / 'temp' / name};" for name in _TEMP_PATHS)
    return f"""daemon off;
worker_processes 1;
pid {launch.workdir / "nginx.pid"};
error_log stderr;
events {{
    worker_connections 128;
}}
http {{
    access_log off;
{temp}
    server {{
        listen {launch.ip}:{launch.port} ssl;
        server_name {" ".join(launch.tls.spec.names if launch.tls else ())};
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        location / {{
            proxy_pass {backend};
            proxy_http_version 1.1;
            proxy_set_header Host $host;
            proxy_buffering off;
            proxy_request_buffering off;
            proxy_read_timeout 120s;
        }}
    }}
}}
"""


def _opensearch(base: str, name: str) -> Seeded:
    with opensearch.client() as http:
        get = opensearch.direct_get(http, base)
        found = opensearch.wait_for_reference_case(get, name)
        version = str(get("/")["version"]["number"])
    return Seeded(version, [database("", found)])


def _kibana(base: str, name: str) -> Seeded:
    with opensearch.client() as http:
        found = opensearch.wait_for_reference_case(kibana.proxy_get(http, base), name)
    return Seeded(kibana_standin.VERSION, [database("", found)])


_SEEDERS: dict[str, Callable[[str, str], Seeded]] = {"opensearch-tls": _opensearch, "kibana-tls": _kibana}


class Nginx:
    protocol = "nginx"
    programs = ("nginx", "nginx:")  # the master retitles itself "nginx: master process /usr/sbin/nginx …"
    software = "nginx"
    user = None
    stop_signal = signal.SIGTERM  # fast shutdown; the master stops its workers
    standin = False

    def start(self, launch: Launch) -> Started:
        if launch.tls is None:
            raise ValueError(f"{launch.name}: the nginx kind runs TLS proxies only")
        own = next(s for s in SERVICES if s.name == launch.name)
        backend = _BACKENDS[launch.name]
        files = launch.tls.write(launch.workdir)
        (launch.workdir / "temp").mkdir(mode=0o755)
        conf = launch.workdir / f"nginx-{launch.ip}.conf"
        upstream = f"http://{neighbour_ip(launch.ip, own, backend)}:{backend.port}"
        conf.write_text(nginx_conf(launch, upstream, str(files.cert), str(files.key)))
        program = servers.program("nginx", "nginx")
        return Started([program, "-e", "stderr", "-p", str(launch.workdir), "-c", str(conf)])

    def seed(self, launch: Launch, started: Started) -> Seeded:
        """Nothing to load: wait until the backend's data shows over HTTPS, and list it."""
        return _SEEDERS[launch.name](f"https://{launch.ip}:{launch.port}", launch.name)

    def digest(self, entry: dict[str, Any], h: Hasher) -> None:
        """The proxied service's digest, taken over HTTPS (`lab_digest` goes there directly)."""
        kinds.kind(entry["protocol"]).digest(entry, h)


KIND = Nginx()
