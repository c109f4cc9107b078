"""TLS for every protocol: one client context that reaches any server, and what a handshake showed.

Certificates are never verified to reach a service: a database behind a self-signed or expired
certificate leaks the same data. What the certificate says is recorded instead (`model.Certificate`),
parsed with `cryptography`; every part of it is server text, bounded here and escaped at the outputs.
A handshake is bounded in time by `Limits.timeout` and in bytes by OpenSSL's cap on a certificate
chain (100 KiB): a server that drips or floods its handshake fails like any other slow or huge reply.
"""

from __future__ import annotations

import contextlib
import hashlib
import ssl
import warnings
from datetime import UTC, datetime
from functools import cache

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import NameOID

from leaksonar.model import Certificate, Tls

MAX_NAMES = 100
"""Names kept from one certificate (a hostile one may carry thousands)."""
MAX_NAME_CHARS = 253
"""Longest DNS name; longer names are cut."""
MAX_DN_CHARS = 1024
"""Longest subject or issuer kept."""

WANTS_TLS = (
    b"plain HTTP request was sent to HTTPS port",  # nginx
    b"Client sent an HTTP request to an HTTPS server",  # Go (Kibana's proxies, etcd, InfluxDB 2)
    b"speaking plain HTTP to an SSL-enabled server",  # Apache httpd
    b"This combination of host and port requires TLS",  # Apache httpd 2.4
)
"""What HTTP servers answer a plaintext request on a TLS port: the service is to be seen over TLS."""


class _Naming(ssl.SSLContext):
    """A client context whose every handshake names `sni`, whatever name the connection gives."""

    sni = ""

    def wrap_bio(
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        return super().wrap_bio(incoming, outgoing, server_side, self.sni or server_hostname, session)


@cache
def client_context(sni: str | None = None) -> ssl.SSLContext:
    """Reaches any TLS server, old ones included: no verification, every protocol version and cipher
    OpenSSL still has (security level 0). Shared by every connection of a scan (one per `sni`). `sni`:
    the name every handshake sends, for drivers that connect to the capped relay by its address (asyncpg,
    aiomysql); None leaves it to each connection's `server_hostname`."""
    context = _Naming(ssl.PROTOCOL_TLS_CLIENT)
    context.sni = sni or ""
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    context.set_ciphers("ALL:@SECLEVEL=0")
    return context


def wants_tls(reply: bytes) -> bool:
    """True if `reply` is a TLS record (a handshake or an alert) or an HTTP server asking for TLS."""
    if len(reply) >= 3 and reply[0] in (0x15, 0x16) and reply[1] == 0x03:
        return True
    head = reply[:4096]
    return any(phrase in head for phrase in WANTS_TLS)


def describe(ssl_object: ssl.SSLObject | ssl.SSLSocket, now: datetime | None = None) -> Tls:
    """What one finished handshake showed: version, cipher, and the leaf certificate."""
    cipher = ssl_object.cipher()
    der = ssl_object.getpeercert(binary_form=True)
    return Tls(
        version=ssl_object.version() or "",
        cipher=cipher[0] if cipher else "",
        cert=certificate(der, now or datetime.now(UTC)) if der else None,
    )


def certificate(der: bytes, now: datetime) -> Certificate | None:
    """The facts of a DER certificate; None if it cannot be parsed at all. What `cryptography` warns
    about it (an over-long name, a deprecated key type) is the server's doing: not printed."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _facts(der, now)


def _facts(der: bytes, now: datetime) -> Certificate | None:
    try:
        cert = x509.load_der_x509_certificate(der)
        subject, issuer = cert.subject, cert.issuer
        not_before, not_after = cert.not_valid_before_utc, cert.not_valid_after_utc
    except ValueError:
        return None
    return Certificate(
        subject=_dn(subject),
        names=_names(cert),
        issuer=_dn(issuer),
        not_before=_time(not_before),
        not_after=_time(not_after),
        self_signed=_self_signed(cert),
        expired=now > not_after,
        sha256=hashlib.sha256(der).hexdigest(),
        key=_key(cert),
    )


def _dn(name: x509.Name) -> str:
    try:
        return name.rfc4514_string()[:MAX_DN_CHARS]
    except ValueError:
        return ""


def _time(moment: datetime) -> str:
    """ISO 8601 in UTC with a four-digit year (strftime writes year 1 as "1")."""
    return f"{moment.year:04d}-{moment:%m-%dT%H:%M:%S}Z"


def _names(cert: x509.Certificate) -> tuple[str, ...]:
    """Common names, then DNS and IP subject alternative names: distinct, bounded in number and length."""
    names: list[str] = []
    with contextlib.suppress(ValueError):
        names += [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    try:
        alternatives = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names += [str(n) for n in alternatives.get_values_for_type(x509.DNSName)]
        names += [str(a) for a in alternatives.get_values_for_type(x509.IPAddress)]
    except (x509.ExtensionNotFound, x509.DuplicateExtension, x509.UnsupportedGeneralNameType, ValueError):
        pass  # none, or none `cryptography` reads (an x400Address, the extension twice): CNs stand
    return tuple(dict.fromkeys(name[:MAX_NAME_CHARS] for name in names))[:MAX_NAMES]


def _self_signed(cert: x509.Certificate) -> bool:
    """Issuer equals subject and the certificate's own key verifies its signature."""
    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


def _key(cert: x509.Certificate) -> str:
    try:
        key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm):
        return "unknown"
    match key:
        case rsa.RSAPublicKey():
            return f"RSA {key.key_size}"
        case ec.EllipticCurvePublicKey():
            return f"EC {key.curve.name}"
        case dsa.DSAPublicKey():
            return f"DSA {key.key_size}"
        case ed25519.Ed25519PublicKey():
            return "Ed25519"
        case ed448.Ed448PublicKey():
            return "Ed448"
    return type(key).__name__
