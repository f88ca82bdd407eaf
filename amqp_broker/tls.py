"""TLS for the listeners (amqps, and the management API over https): the server's
ssl.SSLContext, and what a TLS connection tells the management API about itself.

The settings are RabbitMQ's `ssl_options` (https://www.rabbitmq.com/ssl.html):

- `cert` / `key` (certfile / keyfile): the server's certificate chain and private key (PEM);
- `ca` (cacertfile): the CA certificates client certificates are checked against;
- `verify_peer` (verify = verify_peer): ask for a client certificate and refuse the handshake
  when one is sent that does not chain up to `ca`; without it no certificate is asked for
  (verify_none);
- `fail_if_no_peer_cert`: refuse the handshake when the client sends no certificate at all.
  Like Erlang's ssl application (which rejects fail_if_no_peer_cert with verify_none) it needs
  `verify_peer`.

TLS 1.2 and newer only, as RabbitMQ 3.10 ships (TLS 1.0/1.1 are off by default there).

Only the asyncio side (server.py, broker.py, the management listener) uses this module: the
session engine stays free of ssl and gets the client certificate's CN as a plain string.
"""
from __future__ import annotations

import datetime
import ssl
from dataclasses import dataclass

# TLS versions as RabbitMQ's connection objects name them (rabbit_ssl:info -> `ssl_protocol`)
_PROTOCOL_NAMES = {"TLSv1.2": "tlsv1.2", "TLSv1.3": "tlsv1.3"}


class TLSConfigError(ValueError):
    """TLS settings that cannot work (a missing or unreadable file, a key that is not the
    certificate's, options that contradict each other). The message is one line for the CLI."""


class TLSListenError(OSError):
    """The amqps listener could not bind (same errno), told apart from the plain one's failure."""


@dataclass(frozen=True)
class TLSOptions:
    cert: str
    key: str | None = None  # None: the key is in `cert`'s file
    ca: str | None = None
    verify_peer: bool = False
    fail_if_no_peer_cert: bool = False

    def server_context(self) -> ssl.SSLContext:
        """The server-side context; TLSConfigError when the files or options do not work."""
        if self.fail_if_no_peer_cert and not self.verify_peer:
            raise TLSConfigError("TLS option fail_if_no_peer_cert needs verify_peer")
        if self.verify_peer and not self.ca:
            raise TLSConfigError("TLS option verify_peer needs a CA certificate file (--tls-ca)")
        # each file opened first, so a missing one is named (OpenSSL's errors do not say which)
        _readable("certificate", self.cert)
        if self.key:
            _readable("key", self.key)
        if self.ca:
            _readable("CA certificates", self.ca)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(self.cert, self.key)
        except OSError as exc:  # ssl.SSLError is one too: not PEM, or a key of another certificate
            raise TLSConfigError(f"cannot load TLS certificate {self.cert}"
                                 f"{f' with key {self.key}' if self.key else ''}: {_reason(exc)}") from None
        if self.ca:
            try:
                context.load_verify_locations(cafile=self.ca)
            except OSError as exc:
                raise TLSConfigError(f"cannot load TLS CA certificates {self.ca}: {_reason(exc)}") from None
        if self.verify_peer:
            context.verify_mode = ssl.CERT_REQUIRED if self.fail_if_no_peer_cert else ssl.CERT_OPTIONAL
        else:
            context.verify_mode = ssl.CERT_NONE
        return context


def _readable(what: str, path: str) -> None:
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise TLSConfigError(f"cannot read TLS {what} file {path}: {exc.strerror or exc}") from None


def _reason(exc: OSError) -> str:
    if isinstance(exc, ssl.SSLError):
        return exc.reason or str(exc)
    return exc.strerror or str(exc)


@dataclass(frozen=True)
class ConnectionTLS:
    """What a TLS connection shows in the management API (rabbit_ssl's connection info)."""

    protocol: str | None
    key_exchange: str | None
    cipher: str | None
    mac: str | None  # Erlang calls it mac; RabbitMQ shows it as ssl_hash
    peer_cert_subject: str | None
    peer_cert_issuer: str | None
    peer_cert_validity: str | None
    peer_cn: str | None  # the CN of a *verified* client certificate: EXTERNAL logs in as it

    @classmethod
    def of(cls, transport) -> "ConnectionTLS | None":
        """The TLS facts of an asyncio transport, None for a plain TCP one. Only a certificate
        the handshake verified is reported (`peercert` is empty otherwise)."""
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is None:
            return None
        cert = ssl_object.getpeercert() or None
        version = ssl_object.version()
        key_exchange, cipher, mac = _suite(ssl_object)
        return cls(
            protocol=_PROTOCOL_NAMES.get(version, version),
            key_exchange=key_exchange,
            cipher=cipher,
            mac=mac,
            peer_cert_subject=_dn(cert["subject"]) if cert else None,
            peer_cert_issuer=_dn(cert["issuer"]) if cert else None,
            peer_cert_validity=_validity(cert) if cert else None,
            peer_cn=common_name(cert) if cert else None,
        )


def _suite(ssl_object) -> tuple[str | None, str | None, str | None]:
    """(key exchange, cipher, MAC) of the negotiated suite in Erlang's ssl vocabulary, which
    RabbitMQ reports as ssl_key_exchange / ssl_cipher / ssl_hash: "ecdhe_rsa", "aes_256_gcm",
    "aead" for TLS 1.2's ECDHE-RSA-AES256-GCM-SHA384; "any", "aes_256_gcm", "aead" for TLS 1.3's
    TLS_AES_256_GCM_SHA384. OpenSSL describes each suite of the context (get_ciphers)."""
    negotiated = ssl_object.cipher()
    if not negotiated:
        return None, None, None
    for suite in ssl_object.context.get_ciphers():
        if suite["name"] != negotiated[0]:
            continue
        kex, auth = suite["kea"].removeprefix("kx-"), suite["auth"].removeprefix("auth-")
        if kex in ("ecdhe", "dhe", "ecdh", "dh") and auth not in ("any", "null"):
            kex = f"{kex}_{auth}"
        mac = "aead" if suite["aead"] else {"sha1": "sha"}.get(suite["digest"], suite["digest"])
        return kex, suite["symmetric"].replace("-", "_"), mac
    return None, negotiated[0], None  # a suite OpenSSL does not describe: its name as it is


def common_name(cert: dict) -> str | None:
    """The subject's (last) CN of a certificate as ssl.getpeercert() decodes it; RabbitMQ's
    ssl_cert_login_from = common_name takes the same attribute."""
    names = [value for rdn in cert.get("subject", ()) for key, value in rdn if key == "commonName"]
    return names[-1] if names else None


# the RFC 4514 short names of the attributes getpeercert() spells out
_SHORT = {"commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU",
          "countryName": "C", "stateOrProvinceName": "ST", "localityName": "L",
          "domainComponent": "DC", "emailAddress": "emailAddress"}


def _dn(rdns) -> str:
    """A distinguished name as RabbitMQ prints it: RFC 4514 order (most specific first)."""
    parts = []
    for rdn in reversed(rdns):
        parts.append("+".join(f"{_SHORT.get(key, key)}={_escape(value)}" for key, value in rdn))
    return ",".join(parts)


def _escape(value: str) -> str:
    out = "".join("\\" + ch if ch in ',+"\\<>;=' else ch for ch in value)
    if out[:1] in ("#", " "):
        out = "\\" + out
    if out.endswith(" ") and not out.endswith("\\ "):
        out = out[:-1] + "\\ "
    return out


def _validity(cert: dict) -> str:
    """`notBefore - notAfter` in ISO 8601, as rabbit_ssl formats a certificate's validity."""
    def iso(text: str) -> str:
        when = datetime.datetime.fromtimestamp(ssl.cert_time_to_seconds(text), datetime.timezone.utc)
        return when.strftime("%Y-%m-%dT%H:%M:%SZ")

    return f"{iso(cert['notBefore'])} - {iso(cert['notAfter'])}"
