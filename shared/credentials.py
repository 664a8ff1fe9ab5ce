"""Credentials and TLS of the broker and the store: the one place that turns settings into
client options, for faststream's broker, every raw aiokafka client and PyMongo's client.

Passwords live in ``SecretStr`` settings or in files (Docker secrets) read when a client is
made; they never appear in a message of this module. With the defaults (PLAINTEXT, no user)
every function returns no options: the embedded dev servers on loopback need none.
"""

import asyncio
import ssl
from pathlib import Path
from typing import Any

from aiokafka.conn import create_conn
from aiokafka.errors import (
    AuthenticationFailedError,
    IllegalSaslStateError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
from aiokafka.helpers import create_ssl_context
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512
from pydantic import SecretStr

from shared.settings import Settings


class CredentialsError(RuntimeError):
    """A credential or certificate setting cannot be used; the message names the setting."""


class KafkaAccessRefused(CredentialsError):
    """The broker refused this client's credentials or TLS: retrying will not help."""


def secret(value: SecretStr, file: Path | None, setting: str) -> str:
    """The secret itself: from its file when one is set (a trailing newline is not part of
    it), else from the setting."""
    if file is None:
        return value.get_secret_value()
    try:
        return file.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as error:
        raise CredentialsError(f"DISPOSISI_{setting.upper()}_FILE: cannot read {file} "
                               f"({error.strerror or type(error).__name__})") from None


def _readable(path: Path | None, setting: str) -> str | None:
    if path is None:
        return None
    if not path.is_file():
        raise CredentialsError(f"DISPOSISI_{setting.upper()}: {path} is not a readable file")
    return str(path)


def kafka_ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context of SSL and SASL_SSL (None otherwise): the brokers' certificates are
    verified against ``kafka_ssl_cafile`` (or the system's CAs)."""
    if settings.kafka_security_protocol not in ("SSL", "SASL_SSL"):
        return None
    try:
        context: ssl.SSLContext = create_ssl_context(
            cafile=_readable(settings.kafka_ssl_cafile, "kafka_ssl_cafile"),
            certfile=_readable(settings.kafka_ssl_certfile, "kafka_ssl_certfile"),
            keyfile=_readable(settings.kafka_ssl_keyfile, "kafka_ssl_keyfile"))
    except ssl.SSLError as error:
        raise CredentialsError(f"Kafka TLS files (DISPOSISI_KAFKA_SSL_*) are not usable: "
                               f"{error.reason or error}") from None
    context.check_hostname = settings.kafka_ssl_check_hostname
    return context


def kafka_password(settings: Settings) -> str:
    return secret(settings.kafka_sasl_password, settings.kafka_sasl_password_file,
                  "kafka_sasl_password")


def kafka_client_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for aiokafka's producer, consumer and admin clients."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return {}
    options: dict[str, Any] = {"security_protocol": protocol,
                               "ssl_context": kafka_ssl_context(settings)}
    if protocol.startswith("SASL_"):
        options.update(sasl_mechanism=settings.kafka_sasl_mechanism,
                       sasl_plain_username=settings.kafka_sasl_username,
                       sasl_plain_password=kafka_password(settings))
    return options


def kafka_broker_security(settings: Settings) -> BaseSecurity | None:
    """The same, as faststream's KafkaBroker takes it (``security=``)."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = kafka_ssl_context(settings)
    if protocol == "SSL":
        return BaseSecurity(ssl_context=context)
    scram: type[SASLPlaintext | SASLScram256 | SASLScram512] = (
        SASLScram512 if settings.kafka_sasl_mechanism == "SCRAM-SHA-512" else SASLScram256)
    return scram(settings.kafka_sasl_username, kafka_password(settings), ssl_context=context,
                 use_ssl=protocol == "SASL_SSL")


# What the broker answers when it will not have this client: the same on every attempt.
_REFUSALS = (SaslAuthenticationFailed, AuthenticationFailedError, UnsupportedSaslMechanismError,
             IllegalSaslStateError, ssl.SSLError)


async def kafka_refusal(settings: Settings, *, within: float = 10.0) -> str | None:
    """Why the brokers refuse this client, if they do (wrong password, unknown user, a
    certificate that does not verify, TLS against a plaintext port), else None (reachable, or
    unreachable for a reason that may pass). aiokafka itself only reports "Unable to
    bootstrap", which says nothing of the cause."""
    options = kafka_client_options(settings)
    for server in [s.strip() for s in settings.kafka_bootstrap_servers.split(",") if s.strip()]:
        host, _, port = server.rpartition(":")
        try:
            async with asyncio.timeout(within):
                conn = await create_conn(host.strip("[]"), int(port), client_id="disposisi-probe",
                                         request_timeout_ms=int(within * 1000), **options)
            conn.close()
            return None
        except _REFUSALS as error:
            return _describe_refusal(settings, server, error)
        except Exception:  # down or slow: may pass; try the next server
            continue
    return None


def _describe_refusal(settings: Settings, server: str, error: BaseException) -> str:
    if isinstance(error, ssl.SSLError):
        return (f"Kafka at {server}: TLS failed ({getattr(error, 'reason', None) or error}); check "
                "DISPOSISI_KAFKA_SECURITY_PROTOCOL and DISPOSISI_KAFKA_SSL_CAFILE")
    # The broker's message names the mechanism, never the password.
    return (f"Kafka at {server} refused user {settings.kafka_sasl_username!r} "
            f"({settings.kafka_sasl_mechanism}): {error}; check "
            "DISPOSISI_KAFKA_SASL_USERNAME and the password")


def mongo_password(settings: Settings) -> str:
    return secret(settings.mongodb_password, settings.mongodb_password_file, "mongodb_password")


def mongo_client_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for PyMongo's client beside the URL; options set here win over the
    URL's. Nothing is passed that the settings leave unset, so a URL carrying its own
    credentials or ``tls=true`` keeps working."""
    options: dict[str, Any] = {}
    if settings.mongodb_username:
        options.update(username=settings.mongodb_username, password=mongo_password(settings),
                       authSource=settings.mongodb_auth_source)
    ca_file = _readable(settings.mongodb_tls_ca_file, "mongodb_tls_ca_file")
    key_file = _readable(settings.mongodb_tls_certificate_key_file, "mongodb_tls_certificate_key_file")
    if settings.mongodb_tls or ca_file or key_file:
        options["tls"] = True
    if ca_file:
        options["tlsCAFile"] = ca_file
    if key_file:
        options["tlsCertificateKeyFile"] = key_file
    if settings.mongodb_tls_allow_invalid_hostnames:
        options["tlsAllowInvalidHostnames"] = True
    return options
