"""The lab's certificates, made at `lab up`: one lab CA (DIR/tls/ca.pem) and a leaf per TLS service.

A leaf names the service's DNS names under the lab domain and its address (an IP SAN). A service's
`TlsSpec` may ask for an RSA key, a self-signed certificate or an expired one, so that the scanner's
`self_signed` and `expired` facts have something to find.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from leaksonar.lab import servers
from leaksonar.lab.servers import Account
from leaksonar.lab.spec import TlsSpec

CA_NAME = "leaksonar lab CA"
CA_FILE = Path("tls") / "ca.pem"
"""The lab CA's certificate, relative to the lab directory."""
_DAY = datetime.timedelta(days=1)
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@dataclass(frozen=True, slots=True)
class TlsFiles:
    cert: Path
    key: Path


@dataclass(frozen=True, slots=True)
class Leaf:
    """A service's certificate and key, and what the manifest says of them."""

    cert: x509.Certificate
    key: PrivateKey
    spec: TlsSpec
    ip: str

    def write(self, directory: Path, account: Account | None = None) -> TlsFiles:
        """cert.pem and key.pem in `directory`, readable only by `account` (or the current user)."""
        files = TlsFiles(directory / "cert.pem", directory / "key.pem")
        servers.write_owned(files.cert, self.cert.public_bytes(serialization.Encoding.PEM).decode(), account)
        key = self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        servers.write_owned(files.key, key.decode(), account)
        return files

    def manifest(self) -> dict[str, Any]:
        """The manifest entry's "tls"."""
        return {
            "names": [*self.spec.names, self.ip],
            "sha256": self.cert.fingerprint(hashes.SHA256()).hex(),
            "self_signed": self.spec.self_signed,
            "expired": self.spec.expired,
            "required": self.spec.required,
            "twin": self.spec.twin,
        }


def _new_key(kind: str) -> PrivateKey:
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "leaksonar lab"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


class LabCA:
    """The lab's certificate authority (a new key for every lab)."""

    def __init__(self) -> None:
        now = datetime.datetime.now(datetime.UTC)
        self.key = _new_key("ec")
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(_name(CA_NAME))
            .issuer_name(_name(CA_NAME))
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _DAY)
            .not_valid_after(now + 3650 * _DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
            .sign(self.key, hashes.SHA256())
        )

    def write(self, directory: Path) -> Path:
        """DIR/tls/ca.pem (public)."""
        path = directory / CA_FILE
        path.parent.mkdir(mode=0o755, exist_ok=True)
        path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        return path

    def issue(self, spec: TlsSpec, ip: str) -> Leaf:
        """A leaf for `spec`'s names and `ip`: issued by this CA, or self-signed if the spec says so."""
        key = _new_key(spec.key)
        now = datetime.datetime.now(datetime.UTC)
        not_before, not_after = (
            (now - 400 * _DAY, now - _DAY) if spec.expired else (now - _DAY, now + 825 * _DAY)
        )
        subject = _name(spec.names[0])
        issuer, signer = (subject, key) if spec.self_signed else (self.cert.subject, self.key)
        sans: list[x509.GeneralName] = [x509.DNSName(name) for name in spec.names]
        sans.append(x509.IPAddress(ipaddress.ip_address(ip)))
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(signer, hashes.SHA256())
        )
        return Leaf(cert, key, spec, ip)


def unverified_context() -> ssl.SSLContext:
    """A client TLS context that does not check the server's certificate (the lab's are made up)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
