"""S3 STAND-IN (no S3 server is packaged here): moto's server (PyPI `moto[server]`), in memory. It is not
MinIO nor AWS: its answers say `Server: Werkzeug/...` and `server: amazon.com`, so the software is "moto".

Service: s3-open (no auth: moto answers unsigned requests for the bucket list and listings; an object,
given a bucket policy open to anyone, as each bucket here is), seeded through its own API with boto3 (fake
keys) with three buckets holding the FTP share's files (`data.ftp_files`): a shop
dump and a `.env` in `shop-backups`, the customer export in `shop-exports`, harmless nested files in
`shop-public`. No auth-required service: moto, told to check signatures, fails unsigned requests with a
500 instead of refusing them.

The manifest names things as the scanner does: database "", one collection per bucket, rows = its objects.
"""

from __future__ import annotations

import hashlib
import json
import signal
import sys
from pathlib import Path
from typing import Any

from leaksonar.lab import data, servers
from leaksonar.lab.digest import Hasher
from leaksonar.lab.kinds.base import Launch, Started
from leaksonar.lab.seed import Seeded, database
from leaksonar.lab.spec import ServiceSpec

SERVICES = (ServiceSpec("s3-open", 61, 9000, "s3", "none"),)


def objects() -> dict[str, dict[str, bytes]]:
    """bucket -> key -> content: the FTP share's files in three buckets (deterministic)."""
    files = data.ftp_files()
    public = {path.removeprefix("pub/"): body for path, body in files.items() if path.startswith("pub/")}
    return {
        "shop-backups": {"db/2025/shop.sql": files["backup/shop.sql"], "config/.env": files[".env"]},
        "shop-exports": {"customers_2025.csv": files["exports/customers_2025.csv"]},
        "shop-public": public,
    }


def public_read(bucket: str) -> dict[str, Any]:
    """The bucket policy that opens a bucket to anyone: list it, read its objects."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": ["s3:ListBucket", "s3:GetObject"],
                "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
            }
        ],
    }


def client(ip: str, port: int) -> Any:
    """A boto3 S3 client of the moto server at ip:port (fake keys; moto checks none)."""
    import boto3  # a lab-only dependency (moto's), loaded when a lab S3 is seeded or digested

    return boto3.client(
        "s3",
        endpoint_url=f"http://{ip}:{port}",
        aws_access_key_id="leaksonar-lab",
        aws_secret_access_key="leaksonar-lab",
        region_name="us-east-1",
    )


class S3:
    protocol = "s3"
    programs = ("moto_server",)
    software = "moto"
    user = None
    stop_signal = signal.SIGTERM
    standin = True

    def start(self, launch: Launch) -> Started:
        program = servers.program("moto_server", "moto[server] (PyPI)", Path(sys.executable).parent)
        return Started([program, "-H", launch.ip, "-p", str(launch.port)])

    def seed(self, launch: Launch, started: Started) -> Seeded:
        """The buckets and their objects, put through the S3 API."""
        from importlib.metadata import version

        s3 = client(launch.ip, launch.port)
        buckets = objects()
        for bucket, content in buckets.items():
            s3.create_bucket(Bucket=bucket)
            s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(public_read(bucket)))
            for key, body in content.items():
                s3.put_object(Bucket=bucket, Key=key, Body=body)
        counts = {bucket: len(content) for bucket, content in buckets.items()}
        return Seeded(version("moto"), [database("", counts)])

    def digest(self, entry: dict[str, Any], h: Hasher) -> None:
        """Every bucket, and every object's key and content hash."""
        s3 = client(entry["ip"], entry["port"])
        for bucket in sorted(b["Name"] for b in s3.list_buckets()["Buckets"]):
            h.add("bucket", bucket)
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                for item in page.get("Contents", ()):
                    body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
                    h.add(item["Key"], hashlib.sha256(body).hexdigest())


KIND = S3()
