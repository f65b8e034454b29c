"""Certificates for the test registries: a throw-away CA, server certificates, a JWT signing cert.

Everything is written as PEM files into a directory the caller owns (a pytest tmp dir).
EC P-256 keys for TLS (fast to make); RSA 2048 for the token signer because the tokens are RS256.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID


@dataclass
class KeyPair:
    """A certificate and its private key, in memory and as PEM files."""

    cert: x509.Certificate
    key: object  # a cryptography private key
    cert_path: Path
    key_path: Path

    def der_cert(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write(directory: Path, stem: str, cert: x509.Certificate, key) -> KeyPair:
    directory.mkdir(parents=True, exist_ok=True)
    cert_path = directory / f"{stem}.crt"
    key_path = directory / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return KeyPair(cert, key, cert_path, key_path)


def _builder(subject: x509.Name, issuer: x509.Name, public_key) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=7))
    )


def make_ca(directory: Path, common_name: str = "hpcbox test CA") -> KeyPair:
    """A self-signed CA certificate (``ca.crt``/``ca.key`` in ``directory``)."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        _builder(_name(common_name), _name(common_name), key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return _write(directory, "ca", cert, key)


def issue_server_cert(
    ca: KeyPair, directory: Path, hosts: Sequence[str] = ("127.0.0.1", "localhost"), stem: str = "server"
) -> KeyPair:
    """A TLS server certificate signed by ``ca`` for ``hosts`` (IP addresses or DNS names)."""
    key = ec.generate_private_key(ec.SECP256R1())
    names: list = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    cert = (
        _builder(_name(hosts[0]), ca.cert.subject, key.public_key())
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    return _write(directory, stem, cert, key)


def make_token_signer(directory: Path, common_name: str = "hpcbox test token signer") -> KeyPair:
    """A self-signed RSA certificate that signs RS256 tokens; the registry trusts it as ``rootcertbundle``."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = _builder(_name(common_name), _name(common_name), key.public_key()).sign(key, hashes.SHA256())
    return _write(directory, "token-signer", cert, key)
