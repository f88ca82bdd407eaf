"""Certificates for the TLS tests, made with `cryptography`: a CA, a server certificate it
signs (for localhost, 127.0.0.1 and ::1), client certificates it signs, and a second CA with a
client certificate of its own (one the broker must refuse). EC P-256 keys: quick to make."""
from __future__ import annotations

import datetime
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class Pair:
    """A certificate and its key, as PEM files."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class Certificates:
    ca: Path  # the CA the broker trusts (--tls-ca)
    server: Pair
    client: Pair  # CN=guest, signed by `ca`
    other_ca_client: Pair  # CN=guest, signed by a CA the broker does not know
    directory: Path

    def client_pair(self, common_name: str) -> Pair:
        """A client certificate for `common_name`, signed by the trusted CA (made on demand)."""
        return _issue_client(self.directory, common_name, self._ca_key(), _load_cert(self.ca))

    def _ca_key(self):
        return serialization.load_pem_private_key((self.directory / "ca.key").read_bytes(), None)

    def client_context(self, pair: Pair | None = None, **versions) -> ssl.SSLContext:
        """A client context that trusts our CA (checking the host name), presenting `pair`.
        `versions`: minimum_version / maximum_version (ssl.TLSVersion)."""
        context = ssl.create_default_context(cafile=str(self.ca))
        for name, value in versions.items():
            setattr(context, name, value)
        if pair is not None:
            context.load_cert_chain(str(pair.cert), str(pair.key))
        return context


def make_certificates(directory: Path) -> Certificates:
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = _make_ca("amqp-broker test CA")
    _write_key(directory / "ca.key", ca_key)
    (directory / "ca.pem").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    server_key = ec.generate_private_key(ec.SECP256R1())
    sans = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1"))]
    server_cert = (
        _builder(_name("localhost"), ca_cert.subject, server_key)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server = _write_pair(directory, "server", server_key, server_cert)
    other_key, other_cert = _make_ca("another CA")
    other_dir = directory / "other"
    other_dir.mkdir(exist_ok=True)
    return Certificates(
        ca=directory / "ca.pem",
        server=server,
        client=_issue_client(directory, "guest", ca_key, ca_cert),
        other_ca_client=_issue_client(other_dir, "guest", other_key, other_cert),
        directory=directory,
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "amqp-broker tests"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(subject: x509.Name, issuer: x509.Name, key) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
    )


def _make_ca(common_name: str):
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(common_name)
    cert = (
        _builder(name, name, key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _issue_client(directory: Path, common_name: str, ca_key, ca_cert) -> Pair:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        _builder(_name(common_name), ca_cert.subject, key)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return _write_pair(directory, f"client-{common_name}", key, cert)


def _load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _write_key(path: Path, key) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))


def _write_pair(directory: Path, stem: str, key, cert) -> Pair:
    pair = Pair(directory / f"{stem}.pem", directory / f"{stem}.key")
    pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(pair.key, key)
    return pair
