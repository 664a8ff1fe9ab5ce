"""Certificates and passwords for a secured deployment: a private CA, a certificate per Kafka
broker and for MongoDB, and random passwords, written as files to mount as Docker secrets.

    python -m shared.compose_secrets ./secrets     # what docker-compose.yml mounts

The tests of SASL_SSL (tests/integration/test_broker_credentials.py) run a real Kafka broker
on certificates made by the same code. An existing directory is never overwritten (rotate
by generating a new one).

The directory is made private to its owner (0700); the files in it are world-readable (0644)
because compose mounts each file as it is, and the containers read them as their own users
(kafka, mongodb, disposisi), not as the owner on the host."""

import argparse
import base64
import ipaddress
import secrets
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID_DAYS = 825  # the longest lifetime browsers' rules allow a server certificate
KAFKA_BROKERS = ("kafka-1", "kafka-2", "kafka-3")
# SCRAM users: the brokers' own (inter-broker traffic) and the services'.
KAFKA_USERS = ("broker", "disposisi")
MONGODB_USERS = ("root",)  # the services sign in as root for now (README)

Key = ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class Issued:
    """A certificate and its key, as PEM text."""

    certificate: str
    key: str
    _key: Key
    _certificate: x509.Certificate
    _authority: x509.Certificate

    @property
    def key_and_chain(self) -> str:
        """Key first, then the certificate: the one-file form of Kafka's PEM keystore and of
        mongod's --tlsCertificateKeyFile."""
        return self.key + self.certificate

    def pkcs12(self, password: str) -> bytes:
        """Key, certificate and CA in one PKCS#12 keystore, the form the Kafka image takes."""
        return pkcs12.serialize_key_and_certificates(
            b"disposisi", self._key, self._certificate, [self._authority],
            serialization.BestAvailableEncryption(password.encode()))


def _pem_key(key: Key) -> str:
    # PKCS#8, unencrypted: the form Kafka's PEM keystore reads without ssl.key.password.
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Disposisi"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _alternative_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


class CertificateAuthority:
    """A private CA that signs the servers' (and clients') certificates."""

    def __init__(self, name: str = "Disposisi private CA") -> None:
        self._key: Key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        self._name = _name(name)
        self.certificate = (
            x509.CertificateBuilder().subject_name(self._name).issuer_name(self._name)
            .public_key(self._key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=VALID_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .sign(self._key, hashes.SHA256()))

    @property
    def certificate_pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode()

    def issue(self, hosts: list[str]) -> Issued:
        """A certificate for ``hosts`` (names or IP addresses), good for both ends of TLS."""
        key: Key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        certificate = (
            x509.CertificateBuilder().subject_name(_name(hosts[0])).issuer_name(self._name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=VALID_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([_alternative_name(h) for h in hosts]),
                           critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                  ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(self._key, hashes.SHA256()))
        return Issued(certificate.public_bytes(serialization.Encoding.PEM).decode(), _pem_key(key),
                      key, certificate, self.certificate)


def new_password() -> str:
    # URL-safe: no quote or backslash to escape in a JAAS line or a shell.
    return secrets.token_urlsafe(24)


def write_secret(path: Path, content: str | bytes) -> None:
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(content)
    path.chmod(0o644)


def kafka_jaas(broker_password: str) -> str:
    """The brokers' own SCRAM login (inter-broker traffic), as KAFKA_OPTS points to it."""
    return ("KafkaServer {\n  org.apache.kafka.common.security.scram.ScramLoginModule required\n"
            f'  username="broker" password="{broker_password}";\n}};\n')


def kafka_client_properties(broker_password: str) -> str:
    """What Kafka's own tools (the healthcheck) need to talk to a broker."""
    return "\n".join([
        "security.protocol=SASL_SSL", "sasl.mechanism=SCRAM-SHA-512",
        "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="broker" password="{broker_password}";',
        "ssl.truststore.type=PEM", "ssl.truststore.location=/etc/kafka/secrets/ca.crt", ""])


def write_compose_secrets(directory: Path, *, also_names: Sequence[str] = ()) -> list[Path]:
    """The files docker-compose.yml mounts from ``directory`` (which must not exist yet).
    Certificates name their compose host and localhost, and ``also_names`` (the test broker's
    127.0.0.1)."""
    directory.mkdir(parents=True, exist_ok=False, mode=0o700)
    authority = CertificateAuthority()
    passwords = {f"kafka_{user}_password": new_password() for user in KAFKA_USERS}
    passwords |= {f"mongodb_{user}_password": new_password() for user in MONGODB_USERS}
    passwords["kafka_keystore_password"] = new_password()
    files: dict[str, str | bytes] = {"ca.crt": authority.certificate_pem, **passwords}
    for broker in KAFKA_BROKERS:
        issued = authority.issue([broker, "localhost", *also_names])
        files[f"{broker}.p12"] = issued.pkcs12(passwords["kafka_keystore_password"])
    files["kafka_jaas.conf"] = kafka_jaas(passwords["kafka_broker_password"])
    files["kafka_client.properties"] = kafka_client_properties(passwords["kafka_broker_password"])
    files["mongodb.pem"] = authority.issue(["mongodb", "localhost"]).key_and_chain
    # A replica set with users needs a key its members share (base64 characters only).
    files["mongodb_keyfile"] = base64.b64encode(secrets.token_bytes(96)).decode()
    written = []
    for name, content in files.items():
        write_secret(directory / name, content)
        written.append(directory / name)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.compose_secrets", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory", type=Path, help="where to write the files (must not exist)")
    args = parser.parse_args(argv)
    try:
        written = write_compose_secrets(args.directory)
    except FileExistsError:
        print(f"{args.directory} exists; remove it or choose another directory", file=sys.stderr)
        return 2
    print("\n".join(str(path) for path in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
