"""Certificates for the TLS tests, made with `cryptography`: one factory (`make`) for leaves, CAs,
expired, odd and hostile ones, and the server context that presents them."""

from __future__ import annotations

import ipaddress
import ssl
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

KeyType = Literal["rsa", "ec", "ed25519"]
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


@cache
def private_key(kind: KeyType) -> PrivateKey:
    """One key per type for the whole session (RSA 2048, EC P-256, Ed25519): making keys is slow."""
    if kind == "rsa":
        return rsa.generate_private_key(65537, 2048)
    if kind == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    return ed25519.Ed25519PrivateKey.generate()


@dataclass(frozen=True)
class Issued:
    cert: x509.Certificate
    key: PrivateKey

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def files(self, directory: Path, chain: Sequence[Issued] = ()) -> tuple[Path, Path]:
        """(certificate file with `chain` after the leaf, key file) in `directory`."""
        cert_file, key_file = directory / f"{id(self)}.crt", directory / f"{id(self)}.key"
        cert_file.write_bytes(self.pem + b"".join(c.pem for c in chain))
        key_file.write_bytes(
            self.key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        return cert_file, key_file

    def server_context(self, chain: Sequence[Issued] = ()) -> ssl.SSLContext:
        """A TLS server context presenting this certificate (then `chain`)."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with tempfile.TemporaryDirectory() as directory:
            context.load_cert_chain(*self.files(Path(directory), chain))
        return context


def make(
    cn: str | None,
    *sans: str,
    key: KeyType = "rsa",
    issuer: Issued | None = None,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    ca: bool = False,
    public_key: object | None = None,
) -> Issued:
    """A certificate for common name `cn` (None: none) and subject alternative names `sans` (an IP
    address or a DNS name each, any length), signed by `issuer` (None: self-signed), valid from a day
    ago (`not_before`) to a year ahead (`not_after`; in the past: expired). `public_key` puts another
    key than the signer's in the certificate."""
    own = private_key(key)
    with warnings.catch_warnings():  # a common name over 64 characters, on purpose
        warnings.simplefilter("ignore")
        subject = x509.Name(
            [x509.NameAttribute(NameOID.COMMON_NAME, cn, _validate=False)] if cn is not None else []
        )
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(public_key or own.public_key())  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - timedelta(days=1))
        .not_valid_after(not_after or now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName([_general_name(s) for s in sans]), False)
    signer = issuer.key if issuer else own
    algorithm = None if isinstance(signer, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return Issued(builder.sign(signer, algorithm), own)


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)
