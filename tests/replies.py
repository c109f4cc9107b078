"""Captured reply bytes, one catalogue for every protocol's tests: what each server sent first (to
its protocol's probe or to another's), with where it came from. `not_of(protocol)` feeds each protocol's
"no other protocol's reply matches" test; `http_reply` builds a scripted server's HTTP answer."""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from typing import Any

import pytest

from leaksonar.model import Identity
from leaksonar.protocols import cassandra as cql
from leaksonar.protocols.base import ProtocolModule


def http_reply(status: int | str, headers: Mapping[str, str] | None = None, body: bytes | Any = b"") -> bytes:
    """An HTTP/1.1 answer: `status` is a code (reason "X") or a whole "200 OK"; `body` as bytes or as JSON;
    Content-Length follows `headers`."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    line = status if isinstance(status, str) else f"{status} X"
    head = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    return f"HTTP/1.1 {line}\r\n{head}Content-Length: {len(raw)}\r\n\r\n".encode() + raw


def identified(protocol: ProtocolModule, reply: bytes) -> Identity:
    """`protocol.match(reply)`, which must claim it."""
    identity = protocol.match(reply)
    assert identity is not None, reply
    return identity


# --- elasticsearch ------------------------------------------------------------------------------------

# Captured on loopback from osmem-server 0.1.6 (OpenSearch API 3.8.0), answering the HTTP probe.
OSMEM_ROOT = (
    b"HTTP/1.0 200 OK\r\nContent-Length: 419\r\nContent-Type: application/json; charset=UTF-8\r\n"
    b"X-Elastic-Product: Elasticsearch\r\nDate: Sat, 28 Nov 2026 06:49:39 GMT\r\n\r\n"
    b'{"cluster_name":"osmem","cluster_uuid":"osmem-cluster","name":"osmem-node","tagline":"The OpenSearch '
    b'Project: https://opensearch.org/","version":{"build_date":"2026-01-01T00:00:00.000000000Z",'
    b'"build_hash":"osmem","build_snapshot":false,"build_type":"tar","distribution":"opensearch",'
    b'"lucene_version":"10.5.0","minimum_index_compatibility_version":"2.0.0",'
    b'"minimum_wire_compatibility_version":"2.19.0","number":"3.8.0"}}'
)
# No Elasticsearch is packaged here: these follow Elasticsearch's documented answers (7.10.2 root; 8.x
# security refusal) and the OpenSearch security plugin's.
ES_ROOT = (
    b"HTTP/1.0 200 OK\r\ncontent-type: application/json; charset=UTF-8\r\ncontent-length: 535\r\n\r\n"
    b'{\n  "name" : "es01",\n  "cluster_name" : "docker-cluster",\n  "cluster_uuid" : "Q4cLhhEyTm2bMhRfu'
    b'3T3bA",\n  "version" : {\n    "number" : "7.10.2",\n    "build_flavor" : "default",\n    "build_type" '
    b': "docker",\n    "build_hash" : "747e1cc71def077253878a59143c1f785afa92b9",\n    "build_date" : '
    b'"2021-01-13T00:42:12.435326Z",\n    "build_snapshot" : false,\n    "lucene_version" : "8.7.0",\n    '
    b'"minimum_wire_compatibility_version" : "6.8.0",\n    "minimum_index_compatibility_version" : '
    b'"6.0.0-beta1"\n  },\n  "tagline" : "You Know, for Search"\n}\n'
)
ES_401 = (
    b'HTTP/1.0 401 Unauthorized\r\nWWW-Authenticate: Basic realm="security" charset="UTF-8"\r\n'
    b"WWW-Authenticate: ApiKey\r\ncontent-type: application/json\r\ncontent-length: 403\r\n\r\n"
    b'{"error":{"root_cause":[{"type":"security_exception","reason":"missing authentication credentials '
    b'for REST request [/]","header":{"WWW-Authenticate":["Basic realm=\\"security\\" charset=\\"UTF-8\\"",'
    b'"ApiKey"]}}],"type":"security_exception","reason":"missing authentication credentials for REST '
    b'request [/]","header":{"WWW-Authenticate":["Basic realm=\\"security\\" charset=\\"UTF-8\\"",'
    b'"ApiKey"]}},"status":401}'
)
OPENSEARCH_401 = (
    b'HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm="OpenSearch Security"\r\n'
    b"content-type: text/plain; charset=UTF-8\r\ncontent-length: 12\r\n\r\nUnauthorized"
)

# --- kibana -------------------------------------------------------------------------------------------

# Captured on loopback from the lab's Kibana stand-in (leaksonar/lab/standins/kibana.py), answering the
# HTTP probe; the stand-in copies Kibana 7.10's headers.
KIBANA_STANDIN_ROOT = (
    b"HTTP/1.1 302 Found\r\nkbn-name: kibana\r\n"
    b"kbn-license-sig: df054295b7c7017b4ad031acd796db9bdce967d190bdd394779958bcee779e58\r\n"
    b"x-content-type-options: nosniff\r\nreferrer-policy: no-referrer-when-downgrade\r\n"
    b"cache-control: private, no-cache, no-store, must-revalidate\r\nlocation: /app/home\r\n"
    b"content-length: 0\r\nConnection: close\r\n\r\n"
)
# No Kibana is packaged here: these follow answers of real Kibana releases as published in their
# documentation and bug reports (7.x with spaces, 7.x/8.x asking for login, 6.x with kbn-version).
KIBANA_7_SPACES = (
    b"HTTP/1.1 302 Found\r\nlocation: /spaces/enter\r\nkbn-name: kibana\r\n"
    b"kbn-license-sig: 6d7f5f3be5e9ea9c3fc8534e7eba519ed0a5a447f6f9c7a9a6cda1a5adeb7092\r\n"
    b"kbn-xpack-sig: 81d3c61af2eabc8b8afc2034647ad614\r\n"
    b"cache-control: private, no-cache, no-store, must-revalidate\r\ncontent-length: 0\r\n"
    b"Date: Fri, 31 Jul 2020 22:31:45 GMT\r\nConnection: close\r\n\r\n"
)
KIBANA_LOGIN = (
    b"HTTP/1.1 302 Found\r\nlocation: /login?next=%2F\r\nx-content-type-options: nosniff\r\n"
    b"referrer-policy: no-referrer-when-downgrade\r\nkbn-name: kibana\r\n"
    b"kbn-license-sig: 9b83cb2fcd7abc70cd733f8f11067997d1d68079584cb65234659ff73f933e5a\r\n"
    b"cache-control: private, no-cache, no-store, must-revalidate\r\ncontent-length: 0\r\n\r\n"
)
KIBANA_6 = (
    b"HTTP/1.1 302 Found\r\nlocation: /app/kibana\r\nkbn-name: kibana\r\nkbn-version: 6.8.23\r\n"
    b"cache-control: no-cache\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
)
KIBANA_STATUS_BODY = {
    "name": "kibana",
    "uuid": "df1304e8-a027-5a07-a7cb-87fdccbf57bb",
    "version": {"number": "7.10.2", "build_number": 36468, "build_snapshot": False},
    "status": {"overall": {"state": "green", "title": "Green"}, "statuses": []},
}
KIBANA_STATUS = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n" + json.dumps(KIBANA_STATUS_BODY).encode()
)

# --- couchdb ------------------------------------------------------------------------------------------

# Captured from pouchdb-server 4.2.0 (express-pouchdb) answering the HTTP probe.
POUCHDB_ROOT = (
    b"HTTP/1.1 200 OK\r\nX-Powered-By: Express\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b'Content-Length: 179\r\nETag: W/"b3-kJyubwfkBpCeNwDmu3+Biqysz+w"\r\nVary: Accept-Encoding\r\n'
    b"Date: Sat, 28 Nov 2026 06:51:41 GMT\r\n"
    b'Connection: close\r\n\r\n{"express-pouchdb":"Welcome!","version":"4.2.0","pouchdb-adapters":["memory"],'
    b'"vendor":{"name":"PouchDB authors","version":"4.2.0"},"uuid":"ef0decd1-7a2f-44d9-b258-17f974193e35"}\n'
)
# CouchDB 3.3 as its documentation shows it (no CouchDB is packaged here), open and locked.
COUCHDB_ROOT = (
    b"HTTP/1.1 200 OK\r\nCache-Control: must-revalidate\r\nContent-Length: 247\r\n"
    b"Content-Type: application/json\r\nServer: CouchDB/3.3.3 (Erlang OTP/24)\r\n\r\n"
    b'{"couchdb":"Welcome","version":"3.3.3","git_sha":"40afbcfc7","uuid":"f1e2d3c4b5a6",'
    b'"features":["access-ready","partitioned","pluggable-storage-engines","reshard","scheduler"],'
    b'"vendor":{"name":"The Apache Software Foundation"}}\n'
)
COUCHDB_LOCKED = (
    b"HTTP/1.1 401 Unauthorized\r\nCache-Control: must-revalidate\r\nContent-Length: 62\r\n"
    b"Content-Type: application/json\r\nServer: CouchDB/3.3.3 (Erlang OTP/24)\r\n"
    b'WWW-Authenticate: Basic realm="server"\r\n\r\n'
    b'{"error":"unauthorized","reason":"Authentication required."}\n'
)

# --- clickhouse ---------------------------------------------------------------------------------------

# Captured from clickhouse-server 18.16.1 (Debian).
CLICKHOUSE_HTTP_ROOT = (
    b"HTTP/1.0 200 OK\r\nDate: Sat, 28 Nov 2026 06:49:35 GMT\r\nConnection: Close\r\n"
    b"Content-Type: text/html; charset=UTF-8\r\nContent-Length: 4\r\n\r\nOk.\n"
)
CLICKHOUSE_HTTP_LOCKED_QUERY = (
    b"HTTP/1.0 401 Unauthorized\r\nDate: Sat, 28 Nov 2026 06:51:55 GMT\r\nConnection: Close\r\n"
    b"Content-Type: text/plain; charset=UTF-8\r\nX-ClickHouse-Server-Display-Name: vm\r\n"
    b'WWW-Authenticate: Basic realm="ClickHouse server HTTP API"\r\n\r\n'
    b"Code: 194, e.displayText() = DB::Exception: Password required for user default, "
    b"e.what() = DB::Exception\n"
)
CLICKHOUSE_NATIVE_TO_HTTP = (
    b"HTTP/1.0 400 Bad Request\r\n\r\nPort 9000 is for clickhouse-client program.\r\n"
    b"You must use port 8123 for HTTP.\r\n"
)
CLICKHOUSE_NATIVE_HELLO = b"\x00\nClickHouse\x12\x10\x8c\xa9\x03\x07Etc/UTC\x02vm\x01"
CLICKHOUSE_NATIVE_TO_PING = (
    b"\x02e\x00\x00\x00\x10DB::NetException/DB::NetException: Unexpected packet from client\x8d\x060. "
    b"/lib/x86_64-linux-gnu/libclickhouse.so.18.16(StackTrace::StackTrace()+0x16) [0x7fc7b6b798a6]\n"
)
CLICKHOUSE_NATIVE_LOCKED = (
    b"\x02\xc2\x00\x00\x00\rDB::Exception1DB::Exception: Password required for user default\x05trace\x00"
)

# --- etcd and influxdb --------------------------------------------------------------------------------

# Bytes captured from etcd 3.4.23 (Debian etcd-server): its answer to the generic `GET /` and to its own
# probe `GET /version`.
ETCD_404 = (
    b"HTTP/1.0 404 Not Found\r\nAccess-Control-Allow-Headers: accept, content-type, authorization\r\n"
    b"Access-Control-Allow-Methods: POST, GET, OPTIONS, PUT, DELETE\r\nAccess-Control-Allow-Origin: *\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n"
    b"Date: Sat, 28 Nov 2026 06:49:33 GMT\r\nContent-Length: 19\r\n\r\n404 page not found\n"
)
ETCD_VERSION = (
    b"HTTP/1.0 200 OK\r\nAccess-Control-Allow-Headers: accept, content-type, authorization\r\n"
    b"Access-Control-Allow-Methods: POST, GET, OPTIONS, PUT, DELETE\r\nAccess-Control-Allow-Origin: *\r\n"
    b"Content-Type: application/json\r\nDate: Sat, 28 Nov 2026 06:49:33 GMT\r\nContent-Length: 45\r\n\r\n"
    b'{"etcdserver":"3.4.23","etcdcluster":"3.4.0"}'
)
# Bytes captured from InfluxDB 1.6.7~rc0 (Debian influxdb): its answer to the generic `GET /`.
INFLUX_404 = (
    b"HTTP/1.0 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"X-Content-Type-Options: nosniff\r\nX-Influxdb-Build: OSS\r\nX-Influxdb-Version: 1.6.7~rc0\r\n"
    b"Date: Sat, 28 Nov 2026 06:49:33 GMT\r\nContent-Length: 19\r\n\r\n404 page not found\n"
)

# --- redis and memcached ------------------------------------------------------------------------------

# Bytes captured from redis-server 7.0.15: its answers to its own PING, to the HTTP probe (one error line
# per request line; a first read may hold only the first), to memcached's `version`, to MongoDB's isMaster
# and to MySQL's/PostgreSQL's probes.
REDIS_PONG = b"+PONG\r\n"
REDIS_NOAUTH = b"-NOAUTH Authentication required.\r\n"
REDIS_HTTP_PROBE_REPLY = (
    b"-ERR wrong number of arguments for 'get' command\r\n"
    b"-ERR unknown command 'User-Agent:', with args beginning with: 'leaksonar/0.1' "
    b"'(+https://github.com/leaksonar/leaksonar#responsible-use)' \r\n"
    b"-ERR unknown command 'Accept:', with args beginning with: '*/*' \r\n"
)
REDIS_HTTP_FIRST_LINE = b"-ERR wrong number of arguments for 'get' command\r\n"
REDIS_HTTP_LAST_LINE = b"-ERR unknown command 'Accept:', with args beginning with: '*/*' \r\n"
REDIS_MEMCACHED_PROBE_REPLY = b"-ERR unknown command 'version', with args beginning with: \r\n"
REDIS_MONGODB_PROBE_REPLY = b"-ERR unknown command ':', with args beginning with: \r\n"
REDIS_ERROR = b"-ERR unknown command 'LEAKSONAR', with args beginning with: \r\n"
# Bytes captured from memcached 1.6.18 (plain, and with `-Y authfile`): its `version` answer, its refusal,
# and its errors for other protocols' probes (one per line it cannot parse).
MEMCACHED_VERSION = b"VERSION 1.6.18\r\n"
MEMCACHED_UNAUTHENTICATED = b"CLIENT_ERROR unauthenticated\r\n"
MEMCACHED_ERROR = b"ERROR\r\n"
MEMCACHED_ERRORS = b"ERROR\r\nERROR\r\nERROR\r\n"

# --- mongodb ------------------------------------------------------------------------------------------

# Replies to PROTOCOL.probe (OP_QUERY isMaster, requestID 0x4C53 "SL"), captured on loopback from
# SecantusDB 0.7.0b3 (--standalone; then with --auth) and NX-27017 0.8.1.
MONGODB_SECANTUS = (
    b"W\x01\x00\x00\x01\x00\x00\x00SL\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
    b"\x00\x00\x00\x00\x00\x01\x00\x00\x003\x01\x00\x00\x08isWritablePrimary\x00\x01\x08ismaster\x00\x01"
    b"\x03topologyVersion\x00-\x00\x00\x00\x07processId\x00k\nyyPY\xa3\x8dj(\x8b\x93\x12counter\x00\x00"
    b"\x00\x00\x00\x00\x00\x00\x00\x00\x10maxBsonObjectSize\x00\x00\x00\x00\x01\x10maxMessageSizeBytes\x00"
    b"\x00l\xdc\x02\x10maxWriteBatchSize\x00\xa0\x86\x01\x00\tlocalTime\x00\xf6f\xef \xa2\x01\x00\x00\x10"
    b"logicalSessionTimeoutMinutes\x00\x1e\x00\x00\x00\x12connectionId\x00\n\x00\x00\x00\x00\x00\x00\x00"
    b"\x10minWireVersion\x00\x00\x00\x00\x00\x10maxWireVersion\x00\x1b\x00\x00\x00\x08readOnly\x00\x00\x01"
    b"ok\x00\x00\x00\x00\x00\x00\x00\xf0?\x00"
)
MONGODB_SECANTUS_AUTH = (
    b"n\x01\x00\x00\x01\x00\x00\x00SL\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
    b"\x00\x00\x00\x00\x00\x01\x00\x00\x00J\x01\x00\x00\x08isWritablePrimary\x00\x01\x08ismaster\x00\x01"
    b"\x03topologyVersion\x00-\x00\x00\x00\x07processId\x00k\ny\xc7fy\xb9\xcb\x1b\x8f\x7f\xfc\x12counter"
    b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x10maxBsonObjectSize\x00\x00\x00\x00\x01\x10"
    b"maxMessageSizeBytes\x00\x00l\xdc\x02\x10maxWriteBatchSize\x00\xa0\x86\x01\x00\tlocalTime\x00\x02g"
    b"\xef \xa2\x01\x00\x00\x10logicalSessionTimeoutMinutes\x00\x1e\x00\x00\x00\x12connectionId\x00\n\x00"
    b"\x00\x00\x00\x00\x00\x00\x10minWireVersion\x00\x00\x00\x00\x00\x10maxWireVersion\x00\x1b\x00\x00\x00"
    b"\x08readOnly\x00\x00\x01ok\x00\x00\x00\x00\x00\x00\x00\xf0?\x08accessControlEnabled\x00\x01\x00"
)
MONGODB_NX = (
    b"\xfb\x00\x00\x00SL\x00\x00SL\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
    b"\x00\x00\x00\x00\x01\x00\x00\x00\xd7\x00\x00\x00\x10ok\x00\x01\x00\x00\x00\x08isWritablePrimary\x00"
    b"\x01\x10maxBsonObjectSize\x00\x00\x00\x00\x01\x10maxMessageSizeBytes\x00\x00l\xdc\x02\x10"
    b"maxWriteBatchSize\x00\xa0\x86\x01\x00\tlocalTime\x00\xfff\xef \xa2\x01\x00\x00\x10"
    b"logicalSessionTimeoutMinutes\x00\x1e\x00\x00\x00\x10connectionId\x00\x01\x00\x00\x00\x10"
    b"minWireVersion\x00\x11\x00\x00\x00\x10maxWireVersion\x00\x19\x00\x00\x00\x00"
)
# mongod's fixed answer to an HTTP request on its driver port (text of mongod's source, not captured here:
# no MongoDB server is packaged on this machine).
MONGODB_MONGOD_HTTP = (
    b"HTTP/1.0 200 OK\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: 85\r\n\r\n"
    b"It looks like you are trying to access MongoDB over HTTP on the native driver port.\r\n"
)

# --- mysql and postgresql -----------------------------------------------------------------------------

# What MariaDB 10.11.19 (Debian) sends first, captured on loopback.
MARIADB_GREETING = (
    b"d\x00\x00\x00\n5.5.5-10.11.19-MariaDB-0+deb12u1\x00\x05\x00\x00\x00x'V]PXJK\x00\xfe\xf7\x08\x02\x00"
    b"\xff\x81\x15\x00\x00\x00\x00\x00\x00\x1d\x00\x00\x00x;]@jt(fM-8p\x00mysql_native_password\x00"
)
HOST_NOT_ALLOWED = b"E\x00\x00\x00\xffj\x04Host '127.66.1.9' is not allowed to connect to this MariaDB server"
# The same MariaDB, another connection (another scramble).
MARIADB_GREETING_2 = (
    b"d\x00\x00\x00\n5.5.5-10.11.19-MariaDB-0+deb12u1\x00\x03\x00\x00\x00\\.lVKVNc\x00\xfe\xf7-\x02\x00"
    b"\xff\x81\x15\x00\x00\x00\x00\x00\x00\x1d\x00\x00\x00*DU`dRQ}Bp.3\x00mysql_native_password\x00"
)
# Replies of PostgreSQL 15.18 (Debian 15.18-0+deb12u1) to PROTOCOL.probe, captured on loopback.
POSTGRES_TRUST = (
    b"R\x00\x00\x00\x08\x00\x00\x00\x00S\x00\x00\x00\x1fapplication_name\x00leaksonar\x00S\x00\x00\x00"
    b"\x19client_encoding\x00UTF8\x00S\x00\x00\x00\x17DateStyle\x00ISO, MDY\x00S\x00\x00\x00&"
    b"default_transaction_read_only\x00off\x00S\x00\x00\x00\x17in_hot_standby\x00off\x00S\x00\x00\x00"
    b"\x19integer_datetimes\x00on\x00S\x00\x00\x00\x1bIntervalStyle\x00postgres\x00S\x00\x00\x00\x14"
    b"is_superuser\x00on\x00S\x00\x00\x00\x19server_encoding\x00UTF8\x00S\x00\x00\x002server_version"
    b"\x0015.18 (Debian 15.18-0+deb12u1)\x00S\x00\x00\x00#session_authorization\x00postgres\x00S\x00"
    b"\x00\x00#standard_conforming_strings\x00on\x00S\x00\x00\x00\x15TimeZone\x00Etc/UTC\x00K\x00\x00"
    b"\x00\x0c\x00\x00\x13\xec\x9a\x12\xdfXZ\x00\x00\x00\x05I"
)
POSTGRES_SCRAM = b"R\x00\x00\x00\x17\x00\x00\x00\nSCRAM-SHA-256\x00\x00"
POSTGRES_MD5 = b"R\x00\x00\x00\x0c\x00\x00\x00\x05$3\xe7j"
POSTGRES_CLEARTEXT = b"R\x00\x00\x00\x08\x00\x00\x00\x03"
POSTGRES_NO_HBA_ENTRY = (
    b'E\x00\x00\x00\x9eSFATAL\x00VFATAL\x00C28000\x00Mno pg_hba.conf entry for host "127.66.1.9", user '
    b'"postgres", database "postgres", no encryption\x00Fauth.c\x00L544\x00RClientAuthentication\x00\x00'
)
POSTGRES_HBA_REJECT = (
    b'E\x00\x00\x00\xa8SFATAL\x00VFATAL\x00C28000\x00Mpg_hba.conf rejects connection for host "127.66.1.6", '
    b'user "postgres", database "postgres", no encryption\x00Fauth.c\x00L476\x00RClientAuthentication'
    b"\x00\x00"
)
POSTGRES_NO_SUCH_DATABASE = (
    b'R\x00\x00\x00\x08\x00\x00\x00\x00E\x00\x00\x00]SFATAL\x00VFATAL\x00C3D000\x00Mdatabase "nosuchdb" '
    b"does not exist\x00Fpostinit.c\x00L948\x00RInitPostgres\x00\x00"
)
POSTGRES_NOT_ACCEPTING = (
    b'E\x00\x00\x00wSFATAL\x00VFATAL\x00C55000\x00Mdatabase "nologin" is not currently accepting '
    b"connections\x00Fpostinit.c\x00L350\x00RCheckMyDatabase\x00\x00"
)

# --- cassandra ----------------------------------------------------------------------------------------


def supported(options: dict[str, list[str]]) -> bytes:
    body = struct.pack(">H", len(options)) + b"".join(
        cql.string(k) + struct.pack(">H", len(v)) + b"".join(map(cql.string, v)) for k, v in options.items()
    )
    return cql.HEADER.pack(0x84, 0, 0, cql.SUPPORTED, len(body)) + body


def error(code: int, message: str, version: int = 0x84) -> bytes:
    body = struct.pack(">i", code) + cql.string(message)
    return cql.HEADER.pack(version, 0, 0, cql.ERROR, len(body)) + body


# SUPPORTED and ERROR frames as Cassandra 4.0 and ScyllaDB 5 send them (native_protocol_v4.spec, the
# option names and messages of their sources); the lab's stand-in sends the same shapes.
CASSANDRA_SUPPORTED = supported(
    {
        "PROTOCOL_VERSIONS": ["3/v3", "4/v4", "5/v5", "6/v6-beta"],
        "COMPRESSION": ["snappy", "lz4"],
        "CQL_VERSION": ["3.4.5"],
    }
)
SCYLLA_SUPPORTED = supported(
    {
        "CQL_VERSION": ["3.3.1"],
        "COMPRESSION": ["lz4", "snappy"],
        "SCYLLA_SHARD": ["0"],
        "SCYLLA_NR_SHARDS": ["4"],
    }
)
CASSANDRA_HTTP_PROBE_ERROR = error(
    0x000A,
    "Invalid or unsupported protocol version (71); supported versions are (3/v3, 4/v4, 5/v5, 6/v6-beta)",
)
CASSANDRA_OLD_SERVER_ERROR = error(0x000A, "Invalid or unsupported protocol version: 4", version=0x83)

# --- servers of no protocol here ----------------------------------------------------------------------

# Captured for contrast: nginx 1.22.1 refusing a probe, Python's http.server, a plain Go server (the same
# 404 body as etcd's and InfluxDB's, no CORS or InfluxDB headers), OpenSSH's banner.
NGINX_400 = b"HTTP/1.1 400 Bad Request\r\nServer: nginx/1.22.1\r\nContent-Type: text/html\r\n\r\n"
SIMPLE_HTTP_200 = (
    b"HTTP/1.0 200 OK\r\nServer: SimpleHTTP/0.6 Python/3.11.7\r\nDate: Sat, 28 Nov 2026 05:54:44 GMT\r\n"
    b"Content-type: text/html; charset=utf-8\r\nContent-Length: 523\r\n\r\n<!DOCTYPE HTML>\n"
)
GO_404 = (
    b"HTTP/1.0 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"X-Content-Type-Options: nosniff\r\nContent-Length: 19\r\n\r\n404 page not found\n"
)
SSH_BANNER = b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"
SMTP_GREETING = b"220 mail.example.invalid ESMTP Postfix (Debian/GNU)\r\n"

# FTP greetings: vsftpd 3.0.3 (Debian) captured; the others as those servers write them.
FTP_VSFTPD = b"220 (vsFTPd 3.0.3)\r\n"
FTP_PROFTPD = b"220 ProFTPD 1.3.8 Server (Debian) [::ffff:127.0.0.1]\r\n"
FTP_PUREFTPD = (
    b"220---------- Welcome to Pure-FTPd [privsep] [TLS] ----------\r\n"
    b"220-You are user number 1 of 50 allowed.\r\n220 This is a private system - No anonymous login\r\n"
)
FTP_FILEZILLA = b"220-FileZilla Server 1.7.0\r\n220 Please visit https://filezilla-project.org/\r\n"
FTP_MICROSOFT = b"220 Microsoft FTP Service\r\n"

# Hadoop NameNode web UI `GET /`: the page 3.x and 2.x serve (3.3.6's headers), 1.x's JSP refresh, a front
# that redirects; and a DataNode's, which is no NameNode.
_HADOOP_HEADERS = {
    "Date": "Tue, 08 Dec 2026 04:00:00 GMT",
    "Cache-Control": "no-cache",
    "Pragma": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "X-FRAME-OPTIONS": "SAMEORIGIN",
    "X-XSS-Protection": "1; mode=block",
    "Content-Type": "text/html",
    "Accept-Ranges": "bytes",
}
HDFS_NAMENODE_ROOT = http_reply(
    "200 OK",
    {**_HADOOP_HEADERS, "Last-Modified": "Sun, 18 Jun 2023 08:22:03 GMT"},
    b'<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"\n'
    b'    "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">\n'
    b'<html xmlns="http://www.w3.org/1999/xhtml">\n<head>\n'
    b'<meta http-equiv="REFRESH" content="0;url=dfshealth.html" />\n'
    b"<title>Hadoop Administration</title>\n</head>\n</html>\n",
)
HDFS_NAMENODE_1X = http_reply(
    "200 OK",
    {"Content-Type": "text/html", "Server": "Jetty(6.1.26)"},
    b'<meta HTTP-EQUIV="REFRESH" content="0;url=dfshealth.jsp"/>\n<html>\n<head>\n'
    b"<title>Hadoop Administration</title>\n</head>\n</html>\n",
)
HDFS_REDIRECT = http_reply(
    "302 Found", {**_HADOOP_HEADERS, "Location": "http://nn1.example.invalid:9870/dfshealth.html"}
)
HDFS_DATANODE_ROOT = http_reply(
    "200 OK",
    _HADOOP_HEADERS,
    b'<!DOCTYPE html>\n<html>\n<head>\n<meta http-equiv="REFRESH" content="0;url=datanode.html" />\n'
    b"<title>Hadoop Administration</title>\n</head>\n</html>\n",
)
# S3: moto 5.2.6's bucket list captured (its head and body); MinIO, AWS and Ceph RGW refusals of an unsigned
# `GET /` as those servers write them.
S3_MOTO_ROOT = (
    b"HTTP/1.1 200 OK\r\nServer: Werkzeug/3.1.9 Python/3.11.7\r\nDate: Tue, 08 Dec 2026 04:22:47 GMT\r\n"
    b"Content-Type: application/xml\r\nserver: amazon.com\r\nstatus: 200\r\n"
    b"x-amzn-requestid: LBH0wCVlkTer8fJjOBdbvN7X38prjhjOpj33SBChHO79Ti4JFHOB\r\nContent-Length: 236\r\n"
    b"Access-Control-Allow-Origin: *\r\nConnection: close\r\n\r\n"
    b'<?xml version="1.0" encoding="utf-8"?>\n<ListAllMyBucketsResult xmlns="http://s3.amazonaws.com/doc/'
    b'2006-03-01/"><Buckets/><Owner><DisplayName>webfile</DisplayName><ID>bcaf1ffd86f41161ca5fb16fd081034f'
    b"</ID></Owner></ListAllMyBucketsResult>"
)
S3_MINIO_DENIED = http_reply(
    "403 Forbidden",
    {"Server": "MinIO", "X-Amz-Request-Id": "187F1D2A3C4B5E6F", "Content-Type": "application/xml"},
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied.'
    b"</Message><Resource>/</Resource><RequestId>187F1D2A3C4B5E6F</RequestId><HostId>dd9025bab4ad464b049177"
    b"c95eb6ebf374d3b3fd1af9251148b658df7ac2e3e8</HostId></Error>",
)
S3_AWS_DISABLED = http_reply(
    "403 Forbidden",
    {"x-amz-request-id": "0A1B2C3D4E5F6A7B", "Content-Type": "application/xml", "Server": "AmazonS3"},
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AllAccessDisabled</Code><Message>All access to '
    b"this object has been disabled</Message><RequestId>0A1B2C3D4E5F6A7B</RequestId><HostId>aGVsbG8=</HostId>"
    b"</Error>",
)
S3_CEPH_DENIED = http_reply(
    "403 Forbidden",
    {
        "x-amz-request-id": "tx00000a1b2c3d4e5f60718-0065a1b2c3-1234-default",
        "Content-Type": "application/xml",
    },
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><BucketName></BucketName>'
    b"<RequestId>tx00000a1b2c3d4e5f60718-0065a1b2c3-1234-default</RequestId><HostId>1234-default-default"
    b"</HostId></Error>",
)

# rsync daemon greetings: 3.5.0 (Debian) captured in the lab; 3.1's as it writes it (no digest list).
RSYNC_32 = b"@RSYNCD: 32.0 sha512 sha256 sha1 md5 md4\n"
RSYNC_31 = b"@RSYNCD: 31.0\n"
# SMB: Samba 4.17 (Debian) captured, its answer to `smb.PROBE` (an SMB2 NEGOTIATE): dialect 3.0.2; an SMB1
# server's answer to it as such a server frames one (an SMB1 error).
SMB_SAMBA = (
    b"\x00\x00\x00\xca\xfeSMB@\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
    b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00A\x00\x01\x00\x02\x03\x00\x00vm\x00\x00"
    b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x07\x00\x00\x00\x00\x00\x80\x00\x00\x00\x80\x00\x00\x00\x80\x00\xe8p\xe2\x9b\xcc\x86\xdd\x01\x00\x00\x00\x00"
    b"\x00\x00\x00\x00\x80\x00J\x00\x00\x00\x00\x00`H\x06\x06+\x06\x01\x05\x05\x02\xa0>0<\xa0\x0e0\x0c\x06\n+\x06\x01\x04\x01\x827\x02"
    b"\x02\n\xa3*0(\xa0&\x1b$not_defined_in_RFC4178@please_"
    b"ignore"
)
SMB1_ERROR = b"\x00\x00\x00\x23\xffSMBr\x02\x00\x00\xc0\x98\x01\x28" + bytes(23)

# Docker registry (Distribution 2.8.2, Debian) captured: `GET /v2/` open and behind htpasswd; its `GET /`
# (no API header: only the generic HTTP module names it, identification then asks `GET /v2/`).
REGISTRY_V2 = (
    b"HTTP/1.0 200 OK\r\nContent-Type: application/json; charset=utf-8\r\n"
    b"Docker-Distribution-Api-Version: registry/2.0\r\nDate: Tue, 08 Dec 2026 04:22:24 GMT\r\n"
    b"Content-Length: 2\r\n\r\n{}"
)
REGISTRY_V2_BASIC = (
    b"HTTP/1.0 401 Unauthorized\r\nContent-Type: application/json; charset=utf-8\r\n"
    b'Docker-Distribution-Api-Version: registry/2.0\r\nWww-Authenticate: Basic realm="leaksonar-lab"\r\n'
    b"Date: Tue, 08 Dec 2026 04:22:24 GMT\r\nContent-Length: 87\r\n\r\n"
    b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}\n'
)
REGISTRY_V2_BEARER = (
    b"HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n"
    b"Docker-Distribution-Api-Version: registry/2.0\r\n"
    b'Www-Authenticate: Bearer realm="https://auth.example.invalid/token",service="registry.example.invalid"\r\n'
    b"Content-Length: 87\r\n\r\n"
    b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}\n'
)
REGISTRY_ROOT = (
    b"HTTP/1.0 200 OK\r\nCache-Control: no-cache\r\nDate: Tue, 08 Dec 2026 04:22:26 GMT\r\n"
    b"Content-Length: 0\r\n\r\n"
)

CATALOGUE: dict[str, dict[str, bytes]] = {
    "elasticsearch": {
        "osmem root": OSMEM_ROOT,
        "elasticsearch root": ES_ROOT,
        "elasticsearch 401": ES_401,
        "opensearch 401": OPENSEARCH_401,
    },
    "kibana": {
        "stand-in root": KIBANA_STANDIN_ROOT,
        "7.x spaces": KIBANA_7_SPACES,
        "login": KIBANA_LOGIN,
        "6.x": KIBANA_6,
        "status": KIBANA_STATUS,
    },
    "couchdb": {"pouchdb root": POUCHDB_ROOT, "couchdb root": COUCHDB_ROOT, "couchdb 401": COUCHDB_LOCKED},
    "clickhouse": {
        "http root": CLICKHOUSE_HTTP_ROOT,
        "http 401": CLICKHOUSE_HTTP_LOCKED_QUERY,
        "native to http": CLICKHOUSE_NATIVE_TO_HTTP,
        "native hello": CLICKHOUSE_NATIVE_HELLO,
        "native to ping": CLICKHOUSE_NATIVE_TO_PING,
        "native locked": CLICKHOUSE_NATIVE_LOCKED,
    },
    "etcd": {"404": ETCD_404, "version": ETCD_VERSION},
    "influxdb": {"404": INFLUX_404},
    "redis": {
        "pong": REDIS_PONG,
        "noauth": REDIS_NOAUTH,
        "to http": REDIS_HTTP_PROBE_REPLY,
        "to http, first line": REDIS_HTTP_FIRST_LINE,
        "to http, last line": REDIS_HTTP_LAST_LINE,
        "to memcached": REDIS_MEMCACHED_PROBE_REPLY,
        "to mongodb": REDIS_MONGODB_PROBE_REPLY,
        "to mysql": REDIS_ERROR,
    },
    "memcached": {
        "version": MEMCACHED_VERSION,
        "unauthenticated": MEMCACHED_UNAUTHENTICATED,
        "error": MEMCACHED_ERROR,
        "errors": MEMCACHED_ERRORS,
    },
    "mongodb": {
        "secantus": MONGODB_SECANTUS,
        "secantus auth": MONGODB_SECANTUS_AUTH,
        "nx": MONGODB_NX,
        "mongod to http": MONGODB_MONGOD_HTTP,
    },
    "mysql": {
        "greeting": MARIADB_GREETING,
        "greeting 2": MARIADB_GREETING_2,
        "host refused": HOST_NOT_ALLOWED,
    },
    "postgresql": {
        "trust": POSTGRES_TRUST,
        "scram": POSTGRES_SCRAM,
        "md5": POSTGRES_MD5,
        "cleartext": POSTGRES_CLEARTEXT,
        "no hba entry": POSTGRES_NO_HBA_ENTRY,
        "hba reject": POSTGRES_HBA_REJECT,
        "no such database": POSTGRES_NO_SUCH_DATABASE,
        "not accepting": POSTGRES_NOT_ACCEPTING,
    },
    "cassandra": {
        "cassandra supported": CASSANDRA_SUPPORTED,
        "scylla supported": SCYLLA_SUPPORTED,
        "to http": CASSANDRA_HTTP_PROBE_ERROR,
        "old server": CASSANDRA_OLD_SERVER_ERROR,
    },
    "ftp": {
        "vsftpd": FTP_VSFTPD,
        "proftpd": FTP_PROFTPD,
        "pure-ftpd": FTP_PUREFTPD,
        "filezilla": FTP_FILEZILLA,
        "microsoft": FTP_MICROSOFT,
    },
    "hdfs": {
        "namenode root": HDFS_NAMENODE_ROOT,
        "namenode 1.x": HDFS_NAMENODE_1X,
        "redirect": HDFS_REDIRECT,
    },
    "s3": {
        "moto root": S3_MOTO_ROOT,
        "minio 403": S3_MINIO_DENIED,
        "aws 403": S3_AWS_DISABLED,
        "ceph 403": S3_CEPH_DENIED,
    },
    "rsync": {"rsync 3.5": RSYNC_32, "rsync 3.1": RSYNC_31},
    "smb": {"samba": SMB_SAMBA, "smb1 error": SMB1_ERROR},
    "docker-registry": {"v2": REGISTRY_V2, "v2 basic": REGISTRY_V2_BASIC, "v2 bearer": REGISTRY_V2_BEARER},
    "none": {
        "smtp": SMTP_GREETING,
        "hadoop datanode root": HDFS_DATANODE_ROOT,
        "registry root": REGISTRY_ROOT,
        "nginx 400": NGINX_400,
        "python http.server": SIMPLE_HTTP_200,
        "go 404": GO_404,
        "ssh": SSH_BANNER,
    },
}
"""Captured replies by the protocol that claims them ("none": no protocol here)."""


def not_of(protocol: str) -> list[Any]:
    """Every catalogued reply but `protocol`'s own, as pytest parameters named "protocol: reply"."""
    return [
        pytest.param(reply, id=f"{owner}: {name}")
        for owner, named in CATALOGUE.items()
        if owner != protocol
        for name, reply in named.items()
    ]
