"""Settings → client options of Kafka (aiokafka, faststream) and MongoDB (PyMongo), and secrets
kept out of reprs, dumps and errors. The Kafka side is proven on a real SASL_SSL broker in
tests/integration/test_broker_credentials.py; no MongoDB server with users and TLS runs here
(the embedded NX-27017 has neither), so the MongoDB side is checked as the options PyMongo
is given, and PyMongo's own parsing of them."""

import base64
import ssl
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12
from faststream.security import SASLScram256, SASLScram512
from pydantic import SecretStr, ValidationError
from pymongo import AsyncMongoClient

from services.dev import drop_credentials
from shared.compose_secrets import CertificateAuthority, main, write_compose_secrets
from shared.credentials import (
    CredentialsError,
    kafka_broker_security,
    kafka_client_options,
    mongo_client_options,
)
from shared.kafka import kafka_reachable
from shared.settings import Settings, as_environment, redact_url

PASSWORD = "s3cret-Passw0rd"


@pytest.fixture
def ca_file(tmp_path: Path) -> Path:
    path = tmp_path / "ca.crt"
    path.write_text(CertificateAuthority().certificate_pem)
    return path


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "password"
    path.write_text(PASSWORD + "\n")
    return path


def sasl_ssl(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"kafka_security_protocol": "SASL_SSL", "kafka_sasl_username": "intake",
                              "kafka_sasl_password": PASSWORD}
    return Settings(**{**values, **overrides})


def test_the_embedded_defaults_need_no_options() -> None:
    settings = Settings()
    assert kafka_client_options(settings) == {}
    assert kafka_broker_security(settings) is None
    assert mongo_client_options(settings) == {}


def test_sasl_ssl_gives_aiokafka_scram_over_verified_tls(ca_file: Path) -> None:
    options = kafka_client_options(sasl_ssl(kafka_ssl_cafile=ca_file))
    context = options.pop("ssl_context")
    assert options == {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
                       "sasl_plain_username": "intake", "sasl_plain_password": PASSWORD}
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert len(context.get_ca_certs()) == 1  # the CA file's, not the system's


def test_hostname_check_can_be_turned_off(ca_file: Path) -> None:
    options = kafka_client_options(sasl_ssl(kafka_ssl_cafile=ca_file, kafka_ssl_check_hostname=False))
    assert not options["ssl_context"].check_hostname
    assert options["ssl_context"].verify_mode == ssl.CERT_REQUIRED  # the chain is still verified


def test_sasl_plaintext_has_no_tls() -> None:
    options = kafka_client_options(sasl_ssl(kafka_security_protocol="SASL_PLAINTEXT",
                                            kafka_sasl_mechanism="SCRAM-SHA-256"))
    assert options["security_protocol"] == "SASL_PLAINTEXT"
    assert options["ssl_context"] is None
    assert options["sasl_mechanism"] == "SCRAM-SHA-256"


def test_ssl_alone_sends_no_user(ca_file: Path) -> None:
    options = kafka_client_options(Settings(kafka_security_protocol="SSL", kafka_ssl_cafile=ca_file))
    assert set(options) == {"security_protocol", "ssl_context"}


@pytest.mark.parametrize(("mechanism", "kind"), [("SCRAM-SHA-512", SASLScram512),
                                                 ("SCRAM-SHA-256", SASLScram256)])
def test_faststream_gets_the_same_scram(ca_file: Path, mechanism: str,
                                       kind: type[SASLScram512 | SASLScram256]) -> None:
    security = kafka_broker_security(sasl_ssl(kafka_ssl_cafile=ca_file, kafka_sasl_mechanism=mechanism))
    assert isinstance(security, kind)
    assert isinstance(security, SASLScram512 | SASLScram256)
    assert security.use_ssl
    assert (security.username, security.password) == ("intake", PASSWORD)
    assert isinstance(security.ssl_context, ssl.SSLContext)


def test_the_password_is_read_from_its_file_without_the_newline(password_file: Path) -> None:
    settings = sasl_ssl(kafka_sasl_password=SecretStr(""), kafka_sasl_password_file=password_file)
    assert kafka_client_options(settings)["sasl_plain_password"] == PASSWORD


def test_an_unreadable_password_file_names_the_setting(tmp_path: Path) -> None:
    settings = sasl_ssl(kafka_sasl_password=SecretStr(""), kafka_sasl_password_file=tmp_path / "absent")
    with pytest.raises(CredentialsError, match="DISPOSISI_KAFKA_SASL_PASSWORD_FILE: cannot read"):
        kafka_client_options(settings)


def test_a_missing_ca_file_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(CredentialsError, match=r"DISPOSISI_KAFKA_SSL_CAFILE: .* is not a readable file"):
        kafka_client_options(sasl_ssl(kafka_ssl_cafile=tmp_path / "absent.crt"))


def test_a_ca_file_that_is_no_certificate_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "ca.crt"
    junk.write_text("not a certificate")
    with pytest.raises(CredentialsError, match="DISPOSISI_KAFKA_SSL_"):
        kafka_client_options(sasl_ssl(kafka_ssl_cafile=junk))


@pytest.mark.parametrize(("values", "named"), [
    ({"kafka_security_protocol": "SASL_SSL"}, "kafka_sasl_username"),
    ({"kafka_security_protocol": "SASL_SSL", "kafka_sasl_username": "u"}, "kafka_sasl_password"),
    ({"kafka_sasl_password": PASSWORD, "kafka_sasl_password_file": "/run/secrets/x"}, "not both"),
    ({"kafka_ssl_certfile": "/c.pem"}, "kafka_ssl_keyfile"),
    ({"mongodb_password": PASSWORD}, "mongodb_username"),
    ({"mongodb_username": "disposisi"}, "mongodb_password"),
    ({"mongodb_username": "u", "mongodb_password": PASSWORD, "mongodb_password_file": "/p"}, "not both"),
])
def test_incomplete_credentials_are_refused_naming_the_setting(values: dict[str, Any], named: str) -> None:
    with pytest.raises(ValidationError, match=named) as refused:
        Settings(**values)
    assert PASSWORD not in str(refused.value)


def test_secrets_stay_out_of_repr_and_dumps() -> None:
    settings = sasl_ssl(mongodb_username="disposisi", mongodb_password=PASSWORD,
                        mongodb_url=f"mongodb://root:{PASSWORD}@db:27017/")
    assert PASSWORD not in repr(settings)
    assert PASSWORD not in str(settings)
    assert PASSWORD not in settings.model_dump_json()
    assert str(settings.model_dump()["kafka_sasl_password"]) == "**********"


def test_a_child_process_environment_carries_the_secrets_themselves(
        password_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"mongodb://root:{PASSWORD}@db:27017/?authSource=admin"
    settings = sasl_ssl(mongodb_username="disposisi", mongodb_password_file=password_file,
                        mongodb_url=url, trusted_addresses=["10.0.0.7"])
    env = as_environment(settings)
    assert env["DISPOSISI_KAFKA_SASL_PASSWORD"] == PASSWORD
    assert env["DISPOSISI_MONGODB_URL"] == url
    assert "DISPOSISI_KAFKA_SASL_PASSWORD_FILE" not in env  # unset stays unset, not "None"
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    read_back = Settings()
    assert read_back.kafka_sasl_password.get_secret_value() == PASSWORD
    assert read_back.mongodb_url == url
    assert read_back.mongodb_password_file == password_file
    assert read_back.trusted_addresses == settings.trusted_addresses


def test_mongodb_user_and_tls_become_client_options(ca_file: Path, password_file: Path,
                                                    tmp_path: Path) -> None:
    client_pem = tmp_path / "client.pem"
    client_pem.write_text(CertificateAuthority().issue(["disposisi"]).key_and_chain)
    settings = Settings(mongodb_username="disposisi", mongodb_password_file=password_file,
                        mongodb_auth_source="admin", mongodb_tls=True, mongodb_tls_ca_file=ca_file,
                        mongodb_tls_certificate_key_file=client_pem)
    assert mongo_client_options(settings) == {
        "username": "disposisi", "password": PASSWORD, "authSource": "admin", "tls": True,
        "tlsCAFile": str(ca_file), "tlsCertificateKeyFile": str(client_pem)}


def test_a_mongodb_ca_file_alone_turns_tls_on(ca_file: Path) -> None:
    assert mongo_client_options(Settings(mongodb_tls_ca_file=ca_file)) == {
        "tls": True, "tlsCAFile": str(ca_file)}


async def test_pymongo_takes_the_options(ca_file: Path, password_file: Path) -> None:
    """PyMongo parses them as meant (no connection is made: clients connect lazily)."""
    settings = Settings(mongodb_url="mongodb://db.example:27017/?replicaSet=rs0",
                        mongodb_username="disposisi", mongodb_password_file=password_file,
                        mongodb_tls_ca_file=ca_file, mongodb_tls_allow_invalid_hostnames=True)
    client: AsyncMongoClient[Any] = AsyncMongoClient(settings.mongodb_url, connect=False,
                                                     **mongo_client_options(settings))
    try:
        options = client.options
        assert options.pool_options._credentials is not None
        assert options.pool_options._credentials.username == "disposisi"
        assert options.pool_options._credentials.source == "admin"
        assert options.pool_options._ssl_context is not None
        assert options.replica_set_name == "rs0"
    finally:
        await client.close()


def test_credentials_in_the_url_are_left_to_the_url() -> None:
    settings = Settings(mongodb_url=f"mongodb://root:{PASSWORD}@db:27017/?authSource=admin&tls=true")
    assert mongo_client_options(settings) == {}


def test_printed_urls_hide_the_password() -> None:
    assert redact_url(f"mongodb://root:{PASSWORD}@db1:27017,db2:27017/?replicaSet=rs0") == \
        "mongodb://root:***@db1:27017,db2:27017/?replicaSet=rs0"
    assert redact_url("mongodb://127.0.0.1:27017/") == "mongodb://127.0.0.1:27017/"


def test_compose_secrets_are_written_once(tmp_path: Path) -> None:
    directory = tmp_path / "secrets"
    written = {path.name for path in write_compose_secrets(directory)}
    assert written == {"ca.crt", "kafka-1.p12", "kafka-2.p12", "kafka-3.p12", "kafka_keystore_password",
                       "kafka_jaas.conf", "kafka_client.properties", "mongodb.pem", "mongodb_keyfile",
                       "kafka_broker_password", "kafka_disposisi_password", "mongodb_root_password"}
    assert directory.stat().st_mode & 0o777 == 0o700
    ca = x509.load_pem_x509_certificate((directory / "ca.crt").read_bytes())
    keystore_password = (directory / "kafka_keystore_password").read_bytes()
    for broker in ("kafka-1", "kafka-2", "kafka-3"):
        key, certificate, chain = pkcs12.load_key_and_certificates(
            (directory / f"{broker}.p12").read_bytes(), keystore_password)
        assert key is not None and certificate is not None
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert names.get_values_for_type(x509.DNSName) == [broker, "localhost"]
        certificate.verify_directly_issued_by(ca)
        assert chain == [ca]
    broker_password = (directory / "kafka_broker_password").read_text()
    assert f'username="broker" password="{broker_password}";' in (directory / "kafka_jaas.conf").read_text()
    assert broker_password in (directory / "kafka_client.properties").read_text()
    context = ssl.create_default_context(cafile=str(directory / "ca.crt"))
    context.load_cert_chain(directory / "mongodb.pem")  # key and certificate belong together
    assert len(base64.b64decode((directory / "mongodb_keyfile").read_text(), validate=True)) == 96
    passwords = {(directory / n).read_text() for n in written if n.endswith("_password")}
    assert len(passwords) == 4 and all(len(p) >= 32 for p in passwords)
    assert main([str(directory)]) == 2  # never overwritten


def test_dev_offers_no_credentials_to_its_embedded_servers() -> None:
    env = {"DISPOSISI_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "DISPOSISI_KAFKA_SASL_USERNAME": "u",
           "DISPOSISI_KAFKA_SSL_CAFILE": "/ca", "DISPOSISI_MONGODB_USERNAME": "u",
           "DISPOSISI_MONGODB_PASSWORD_FILE": "/p", "DISPOSISI_MONGODB_TLS": "true",
           "DISPOSISI_MONGODB_DATABASE": "d", "DISPOSISI_KAFKA_ACKS": "all"}
    external_store = dict(env)
    assert drop_credentials(external_store, kafka=True, mongodb=False) == [
        "DISPOSISI_KAFKA_SASL_USERNAME", "DISPOSISI_KAFKA_SECURITY_PROTOCOL", "DISPOSISI_KAFKA_SSL_CAFILE"]
    assert external_store["DISPOSISI_MONGODB_USERNAME"] == "u"  # for the external store
    both_embedded = dict(env)
    drop_credentials(both_embedded, kafka=True, mongodb=True)
    assert both_embedded == {"DISPOSISI_MONGODB_DATABASE": "d", "DISPOSISI_KAFKA_ACKS": "all"}
    both_external = dict(env)
    assert drop_credentials(both_external, kafka=False, mongodb=False) == []
    assert both_external == env


async def test_an_unreadable_password_file_makes_kafka_not_ready_instead_of_crashing(
        tmp_path: Path) -> None:
    settings = sasl_ssl(kafka_sasl_password=SecretStr(""), kafka_sasl_password_file=tmp_path / "gone")
    assert await kafka_reachable(settings, within=1.0) is False
