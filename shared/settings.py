"""The one settings class of every Disposisi service, read from ``DISPOSISI_*`` variables."""

import json
import os
import socket
from importlib import resources
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from limits import parse as parse_rate_limit
from pydantic import Field, SecretStr, field_serializer, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _packaged(package: str, name: str) -> Path:
    return Path(str(resources.files(package).joinpath(name)))


def _instance_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class Settings(BaseSettings):
    """Configuration shared by intake, router and SLA; each service reads what it needs."""

    # hide_input_in_errors: a refused setting is named, but no value is echoed (a model-level
    # check would otherwise print every input, passwords and the signing key included).
    model_config = SettingsConfigDict(env_prefix="DISPOSISI_", extra="ignore", hide_input_in_errors=True)

    tenant: str = Field("kota-bengkulu", description="Tenant id written into every event.")
    ticket_prefix: str = Field("BKL", description="Prefix of tracking numbers.")
    timezone: str = Field("Asia/Jakarta", description="Tenant timezone for working-day clocks.")

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    topic_partitions: int = Field(3, ge=1, description="Partitions of topics Disposisi creates.")
    # repr=False: a URL may carry a password (see `mongodb_username` for the other way)
    mongodb_url: str = Field("mongodb://127.0.0.1:27017/?directConnection=true", repr=False)
    mongodb_database: str = "disposisi"

    rulebook: Path = _packaged("services.router", "rulebooks/kota-bengkulu.yaml")
    sla_policy: Path = _packaged("services.sla", "policies/default.yaml")

    http_host: str = "127.0.0.1"
    intake_port: int = 8080
    sla_port: int = 8081
    router_port: int = 8082

    consume_batch_size: int = Field(500, ge=1, description="Most records one handler call takes.")
    fetch_max_wait_ms: int = Field(50, ge=1, description="Longest a consumer waits for records.")
    outbox_lease_seconds: float = Field(
        15.0, gt=0, description="How long a publisher owns an unpublished record before others retry."
    )
    outbox_sweep_seconds: float = Field(2.0, gt=0, description="Pause between outbox sweeps.")
    scheduler_interval_seconds: float = Field(1.0, gt=0, description="Pause between SLA scans.")
    scheduler_batch_size: int = Field(200, ge=1)
    late_after_seconds: float = Field(
        30.0, ge=0, description="An escalation fired this long after its trigger is marked late."
    )
    parked_update_seconds: float = Field(
        3600.0, gt=0, description="How long an update waits for its ticket to open before it "
                                  "is dead-lettered.")
    reroute_max_bounces: int = Field(
        2, ge=1, description="Rejections after which a ticket goes to the triage desk.")
    rulebook_reload_seconds: float = Field(
        5.0, gt=0, description="How often the router checks the rulebook file for changes.")
    instance_id: str = Field(default_factory=_instance_id)

    # --- sign-in and permissions ---
    auth_secret: str = Field(
        "", repr=False, description="Key that signs access tokens (HS256), at least 32 random "
                                    "characters; required (`disposisi dev` makes its own).")
    auth_token_seconds: float = Field(1800.0, gt=0, description="Lifetime of an access token.")
    auth_max_failed_sign_ins: int = Field(
        5, ge=1, description="Wrong passwords in a row that lock an account.")
    auth_lockout_seconds: float = Field(900.0, gt=0, description="How long a locked account stays locked.")
    # --- consumer limits (poison records) ---
    max_record_bytes: int = Field(
        1_000_000, ge=1024, description="Largest record a consumer accepts; a larger one is "
                                        "dead-lettered (truncated) and the consumer moves on.")
    deadletter_payload_bytes: int = Field(
        64_000, ge=1024, le=512_000,
        description="Most bytes of the original record a dead letter carries (as UTF-8 text); "
                    "longer ones are cut, with the original size and SHA-256 kept. Kept well "
                    "under the producer's 1 MiB request limit.")
    consumer_fetch_bytes: int = Field(
        16 * 1024 * 1024, ge=1024,
        description="Largest record a consumer can fetch (per partition fetch); above "
                    "max_record_bytes so an oversized record is read, and dead-lettered, instead "
                    "of blocking its partition. Keep the broker's message.max.bytes below it.")

    @model_validator(mode="after")
    def _fetch_holds_what_is_refused(self) -> "Settings":
        if self.consumer_fetch_bytes <= self.max_record_bytes:
            raise ValueError("consumer_fetch_bytes must exceed max_record_bytes, or a record just "
                             "over the limit could not be fetched to dead-letter it")
        return self
    # --- reconciliation, readiness and store timeouts ---
    mongodb_timeout_ms: int = Field(
        500, ge=50, description="How long a MongoDB call waits to find or connect to the store "
                                "before failing (the HTTP API then answers 503).")
    mongodb_socket_timeout_ms: int = Field(
        10_000, ge=100, description="How long a MongoDB call waits for a reply on an open "
                                    "connection (a hung store).")
    store_retry_after_seconds: int = Field(
        5, ge=1, description="Retry-After of the 503 answered while the store is unreachable.")
    reconcile_after_seconds: float = Field(
        120.0, gt=0, description="A complaint accepted this long ago without a ticket has its "
                                 "complaint.received republished.")
    reconcile_interval_seconds: float = Field(
        15.0, gt=0, description="Pause between reconciliation scans.")
    reconcile_alarm_seconds: float = Field(
        600.0, gt=0, description="A complaint without a ticket for this long raises the alarm "
                                 "and makes intake not ready.")
    reconcile_batch_size: int = Field(
        500, ge=1, description="Most complaints one reconciliation scan republishes.")
    readiness_timeout_seconds: float = Field(
        3.0, gt=0, description="How long each /readyz check may take.")
    # --- abuse limits (privacy helper) ---
    max_body_bytes: int = Field(
        262_144, ge=1024, description="Largest request body; larger ones are refused with 413 "
                                      "before they are read in full.")
    rate_limits_enabled: bool = Field(True, description="Off only for load tests and benchmarks.")
    rate_limit_submit: str = Field(
        "30/minute", description="Complaints one address may submit (`limits` notation).")
    rate_limit_submit_per_key: str = Field(
        "600/minute", description="Complaints one API key (X-API-Key) may submit.")
    rate_limit_tracking: str = Field(
        "60/minute", description="Tracking-view reads per address.")
    rate_limit_replies: str = Field("10/minute", description="Citizens' replies per address.")
    rate_limit_sign_in: str = Field("10/minute", description="Sign-in attempts per address.")
    tracking_code_failures: str = Field(
        "10/hour", description="Wrong tracking codes per ticket before it answers only 429.")
    trusted_addresses: list[str] = Field(
        default_factory=list, description="Addresses exempt from per-address limits (a channel "
                                          "gateway that posts for many citizens); keys still count.")

    @field_validator("rate_limit_submit", "rate_limit_submit_per_key", "rate_limit_tracking",
                     "rate_limit_replies", "rate_limit_sign_in", "tracking_code_failures")
    @classmethod
    def _rate_limit_notation(cls, value: str) -> str:
        parse_rate_limit(value)  # "30/minute", "10 per hour": refused at start, not per request
        return value
    # --- dev supervision (disposisi dev) ---
    drain_timeout_seconds: float = Field(
        30.0, ge=0, description="On Ctrl-C/SIGTERM, how long `disposisi dev` lets the consumers "
                                "drain the embedded broker before stopping it.")
    dev_ready_timeout_seconds: float = Field(
        120.0, gt=0, description="How long `disposisi dev` waits for every service to answer "
                                 "ready before it names the ones that do not.")
    # --- embedded store ---
    embedded_store: Literal["secantus", "nx-27017"] = Field(
        "nx-27017", description="The MongoDB-protocol server `disposisi dev`, the tests and the "
                                "benchmarks start when DISPOSISI_MONGODB_URL is not set.")
    # --- real Apache Kafka (replication, idempotence) ---
    kafka_replication_factor: int = Field(
        1, ge=1, description="Replicas of each topic Disposisi creates (3 on a production cluster).")
    kafka_min_insync_replicas: int = Field(
        1, ge=1, description="min.insync.replicas of the topics Disposisi creates: with acks=all a "
                             "write succeeds only once this many replicas have it (2 of 3 in "
                             "production).")
    kafka_idempotent_producer: bool = Field(
        False, description="Idempotent producers (no duplicates from producer retries). Needs a "
                           "broker that serves InitProducerId: on for real Kafka, off for the "
                           "embedded Tansu, which rejects it.")
    kafka_acks: Literal["all", "1", "0"] = Field(
        "all", description="Producer acknowledgements; 'all' so an accepted complaint survives the "
                           "loss of the partition leader.")

    # --- sign-in with the city's identity provider (OpenID Connect) ---
    oidc_issuer: str | None = Field(
        None, description="Issuer URL of the city's OpenID Connect provider; unset turns it off. "
                          "Its tokens are then accepted beside local accounts.")
    oidc_client_id: str = Field(
        "", description="Client id Disposisi is registered under at the provider (required with "
                        "an issuer).")
    oidc_audience: str | None = Field(
        None, description="The `aud` a token must carry; unset: the client id (as in ID tokens).")
    oidc_role_claim: str = Field(
        "disposisi_role", description="Claim holding the Disposisi role (a string, or a list with "
                                      "exactly one Disposisi role).")
    oidc_agency_claim: str = Field(
        "disposisi_agency", description="Claim holding the agency code of officers and agency heads.")
    oidc_tenant_claim: str | None = Field(
        None, description="Claim holding the tenant; unset: every token is of `tenant`.")
    oidc_jwks_cache_seconds: float = Field(
        300.0, gt=0, description="How long the provider's signing keys are kept before re-reading "
                                 "(an unknown key id re-reads them sooner).")
    oidc_leeway_seconds: float = Field(
        30.0, ge=0, description="Clock difference to the provider tolerated for exp/iat.")
    oidc_timeout_seconds: float = Field(
        5.0, gt=0, description="Longest wait for the provider's discovery document or keys.")

    # --- broker and store credentials (shared/credentials.py turns these into client options) ---
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="How clients talk to Kafka: PLAINTEXT for the embedded broker on "
                                 "loopback; SASL_SSL (SCRAM over TLS) for a production cluster.")
    kafka_sasl_mechanism: Literal["SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "SCRAM-SHA-512", description="SASL mechanism with SASL_PLAINTEXT / SASL_SSL.")
    kafka_sasl_username: str = Field("", description="SCRAM user of this service.")
    kafka_sasl_password: SecretStr = Field(
        SecretStr(""), description="Its password; prefer kafka_sasl_password_file.")
    kafka_sasl_password_file: Path | None = Field(
        None, description="File holding the password (a Docker secret); read whenever a client "
                          "connects, so a rotated password is picked up on reconnect.")
    kafka_ssl_cafile: Path | None = Field(
        None, description="CA certificate(s) (PEM) that signed the brokers' certificates; unset: "
                          "the system's CAs.")
    kafka_ssl_certfile: Path | None = Field(
        None, description="Client certificate (PEM), for brokers that require one (mutual TLS).")
    kafka_ssl_keyfile: Path | None = Field(None, description="Private key (PEM) of the client certificate.")
    kafka_ssl_check_hostname: bool = Field(
        True, description="Check that a broker's certificate names the host connected to.")
    mongodb_username: str = Field(
        "", description="MongoDB user (or put user and password in mongodb_url).")
    mongodb_password: SecretStr = Field(
        SecretStr(""), description="Its password; prefer mongodb_password_file.")
    mongodb_password_file: Path | None = Field(
        None, description="File holding the MongoDB password (a Docker secret).")
    mongodb_auth_source: str = Field(
        "admin", description="Database the MongoDB user is defined in (used with mongodb_username).")
    mongodb_tls: bool = Field(False, description="Talk TLS to MongoDB (as does tls=true in the URL).")
    mongodb_tls_ca_file: Path | None = Field(
        None, description="CA certificate(s) (PEM) that signed the MongoDB server's certificate.")
    mongodb_tls_certificate_key_file: Path | None = Field(
        None, description="Client certificate and its key in one PEM file, for x.509 or mutual TLS.")
    mongodb_tls_allow_invalid_hostnames: bool = Field(
        False, description="Skip the check that the server's certificate names its host (never in "
                           "production).")

    # --- console (agency workspace and citizen pages, services/console) ---
    console_port: int = Field(8083, description="Port of the console's pages.")
    console_intake_url: str = Field(
        "http://127.0.0.1:8080", description="Where the console reaches intake's API.")
    console_sla_url: str = Field(
        "http://127.0.0.1:8081", description="Where the console reaches the SLA API (sign-in too).")
    console_channel_api_key: str | None = Field(
        None, repr=False, description="The web channel's API key the public form (/submit) "
                                      "posts complaints with; unset: the form is closed.")
    console_live_poll_seconds: float = Field(
        2.0, gt=0, description="How often an open inbox asks the SLA API whether its page changed.")
    console_page_size: int = Field(25, ge=1, le=100, description="Tickets per inbox page.")
    console_api_timeout_seconds: float = Field(
        10.0, gt=0, description="Longest the console waits for intake or the SLA API.")

    # --- SLA policy reload ---
    sla_policy_reload_seconds: float = Field(
        5.0, gt=0, description="How often the SLA service checks its policy files for changes.")

    # --- consumers started in the background, bounded stop ---
    consumer_start_retry_seconds: float = Field(
        2.0, gt=0, description="A consumer whose start failed (broker gone) is started again after "
                               "this long; the HTTP port is open meanwhile.")
    broker_stop_seconds: float = Field(
        30.0, gt=0, description="Longest wait, when a service stops, for its producer to flush "
                                "and its consumers to leave: a send the broker will never "
                                "acknowledge must not hold the process forever.")

    # --- tenants ---
    tenants_file: Path | None = Field(
        None, description="YAML registry of the tenants this deployment serves (rulebook, policy, "
                          "timezone, ticket prefix, province of each; see shared/tenants.py); "
                          "unset: the one tenant `tenant` with `rulebook` and `sla_policy`.")
    province_forward_seconds: float = Field(
        2.0, gt=0, description="Pause between sweeps that forward complaints to a province tenant "
                               "and carry its progress back to the city's ticket.")

    # --- escalation reconciliation (SLA) ---
    escalation_check_after_seconds: float = Field(
        60.0, gt=0, description="An escalation fired this long ago must be in the escalations "
                                "topic's log where the broker acknowledged it; if not (a broker "
                                "that lost its log), it is re-announced under the same event id. "
                                "Also the pause before re-announcing it again.")
    escalation_watch_seconds: float = Field(
        86_400.0, gt=0, description="How long after firing an escalation is still checked against "
                                    "the log (a broker losing it later goes unnoticed).")
    escalation_check_interval_seconds: float = Field(
        30.0, gt=0, description="Pause between checks of the escalations topic's log.")
    escalation_alarm_seconds: float = Field(
        600.0, gt=0, description="An escalation missing from the log this long after firing "
                                 "(or no check for this long) raises the alarm and makes the SLA "
                                 "service not ready.")
    escalation_check_batch_size: int = Field(
        1000, ge=1, description="Most escalations one check reads back (least recently checked "
                                "first).")
    # --- store round trips and report read model (performance) ---
    api_key_cache_seconds: float = Field(
        5.0, ge=0, description="How long a checked API key is trusted without asking the store "
                               "again (a channel posts many times a second); a revoked key "
                               "stops working within this. 0: every call asks the store.")

    # --- metrics and status ---
    metrics_refresh_seconds: float = Field(
        15.0, gt=0, description="Pause between refreshes of the metrics that need the store or the "
                                "broker (backlogs, open tickets, consumer lag); a scrape never "
                                "queries them.")
    metrics_refresh_timeout_seconds: float = Field(
        5.0, gt=0, description="Longest one such refresh may take before it counts as failed.")
    status_timeout_seconds: float = Field(
        5.0, gt=0, description="How long `disposisi status` waits for each service and the broker.")
    # --- bounded shutdown ---
    loops_stop_seconds: float = Field(
        10.0, gt=0, description="Longest wait, when a service stops, for its background loops "
                                "(scheduler, sweeps) to end after they were cancelled; one still "
                                "running is logged and left.")
    store_close_seconds: float = Field(
        10.0, gt=0, description="Longest wait, when a service stops, for its store client to "
                                "close.")
    http_keep_alive_seconds: int = Field(
        75, ge=1, description="How long a service keeps an idle HTTP connection open. Longer "
                              "than a client's or a proxy's own idle limit (httpx 5 s, most "
                              "load balancers 60 s), so the client always closes first: when "
                              "both limits are equal, the server can close a connection just "
                              "as the client sends on it, and that request fails unanswered.")
    http_shutdown_seconds: float = Field(
        15.0, gt=0, description="Longest wait, when a service stops, for open HTTP requests "
                                "(a live page's stream, a client that stalls) to finish; then "
                                "they are cancelled.")

    # --- console: reply templates per agency; the inbox's count ---
    inbox_count_cap: int = Field(
        100, ge=1, description="`GET /v1/tickets` counts matching tickets up to this many and "
                               "then says `total_capped` (the console shows \"100+\"): a full "
                               "count of a large inbox on every page and every live poll is slow.")
    console_reply_templates_dir: Path | None = Field(
        _packaged("services.console", "reply_templates"),
        description="Directory of reply templates, one `<tenant>.yaml` per tenant (agency code "
                    "or `*` → name, text, actions); checked at the console's start. Unset: none.")
    # --- reports: the compliance read model ---
    report_catch_up_seconds: float = Field(
        2 * 86400, gt=0, description="At start-up the SLA service counts into the report read "
                                     "model the tickets resolved and escalations fired this many "
                                     "seconds back that a crash left uncounted (the first start "
                                     "counts every one: the back-fill). It runs in the "
                                     "background; readiness says backfilling until done.")
    report_open_refresh_seconds: float = Field(
        30, gt=0, description="How often the SLA service re-reads the open tickets for the "
                              "compliance report and the open-ticket gauges: only the "
                              "tickets written since the last read (a report reads them "
                              "too, so it is never stale).")

    # --- notifications (services/notify) ---
    notify_port: int = Field(8084, description="Port of the notification service's API.")
    notify_directory: Path | None = Field(
        None, description="YAML directory of the people to notify: per tenant, each agency's "
                          "roles and the tenant's own roles name people with contact URLs "
                          "(Apprise) and quiet hours (see README, Notifications); unset: nobody "
                          "is notified and every notice is recorded as without recipients.")
    notify_poll_seconds: float = Field(
        1.0, gt=0, description="Pause between the sender's looks for deliveries that are due.")
    notify_batch_size: int = Field(50, ge=1, description="Most deliveries one sender turn takes.")
    notify_retry_base_seconds: float = Field(
        30.0, gt=0, description="Wait before the first retry of a failed delivery; doubles with "
                                "each further failure.")
    notify_retry_max_seconds: float = Field(
        1800.0, gt=0, description="Longest wait between two attempts of one delivery.")
    notify_max_attempts: int = Field(
        10, ge=1, description="Attempts after which a delivery is given up as failed (listed by "
                              "GET /v1/deliveries?status=failed).")
    notify_send_timeout_seconds: float = Field(
        30.0, gt=0, description="Longest one attempt may take before it counts as failed.")
    notify_lease_seconds: float = Field(
        120.0, gt=0, description="How long a sender owns a delivery it took; a sender that died "
                                 "leaves it to another after this. Longer than the send timeout.")

    # --- Open311 GeoReport v2 and attachments (issue 11) ---
    open311_channel: str = Field(
        "open311", description="The channel whose API keys may post GeoReport v2 requests "
                               "(`api_key`); keys of other channels are refused (403).")
    open311_requests_max: int = Field(
        200, ge=1, le=1000, description="Most service requests one GET requests.json answers "
                                        "(newest first).")
    open311_window_days: int = Field(
        90, ge=1, description="GET requests.json without dates covers this many days back; "
                              "no query spans more.")
    attachment_max_bytes: int = Field(
        10_000_000, ge=1, description="Largest photo or document accepted with a complaint.")
    attachment_types: list[str] = Field(
        ["image/jpeg", "image/png", "image/webp", "application/pdf"],
        description="Types accepted, as found in the content (not the name or the sender's "
                    "Content-Type).")
    attachment_fetch_seconds: float = Field(
        10.0, gt=0, description="Longest fetch of a `media_url` (whole download).")
    attachment_fetch_private: bool = Field(
        False, description="Allow `media_url` on loopback or private addresses (tests only: in "
                           "production a URL could reach internal services).")
    attachment_thumbnail_pixels: int = Field(
        320, ge=16, description="Longest side of an image's thumbnail.")

    # --- traces and logs ---
    otlp_endpoint: str | None = Field(
        None, description="OTLP/HTTP collector base URL (e.g. http://127.0.0.1:4318); spans go to "
                          "<url>/v1/traces. Unset: tracing off (a no-op tracer, no trace headers).")
    trace_sample_ratio: float = Field(
        1.0, ge=0, le=1, description="Fraction of new traces kept (a message or request that "
                                     "arrives traced follows its parent's choice).")
    log_format: Literal["json", "console"] = Field(
        "json", description="json: one JSON object per line (production); console: readable "
                            "lines (what `disposisi dev` uses unless this is set).")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Least severe log level written.")
    # --- console: failed notification deliveries on the dashboard ---
    console_notify_url: str = Field(
        "http://127.0.0.1:8084", description="Base URL of the notification service's API, as "
                                             "the console reaches it (the dashboard lists "
                                             "failed deliveries from it).")
    # --- learning from the desk: the statistical second opinion (issue 13) ---
    second_opinion_enabled: bool = Field(
        True, description="Ask the statistical second opinion when the rules are unsure (and "
                          "for the disagreement check). Off: the rules alone decide.")
    second_opinion_model: Path | None = Field(
        None, description="Model file written by `disposisi rules train-model`; unset: the "
                          "router trains one at start from `second_opinion_training` and the "
                          "desk's labelled examples, and again when new examples arrive.")
    second_opinion_training: list[Path] = Field(
        default_factory=lambda: [_packaged("services.router", "training/kota-bengkulu-train.jsonl"),
                                 _packaged("services.router", "training/kota-bengkulu-train7.jsonl")],
        description="Labelled JSON-lines files (text, title, agency) the router trains on besides "
                    "the desk's examples, retrained when one changes; never a holdout or blind "
                    "set (refused by name). Default: the packaged Kota Bengkulu training corpus "
                    "and train7 (a copy of tests/data/routing-train7.jsonl, written blind to the "
                    "rulebook the way citizens write).")
    second_opinion_agree_probability: float = Field(
        0.5, gt=0, le=1, description="A TRIAGE becomes a decision when the model's first choice "
                                     "is the rules' first candidate with at least this probability.")
    second_opinion_dispute_probability: float = Field(
        0.8, gt=0, le=1, description="A confident rule decision is flagged for the triage desk "
                                     "when the model puts another agency first with at least "
                                     "this probability.")
    second_opinion_confident: float = Field(
        0.5, ge=0, le=1, description="Rule confidence from which a decision counts as confident "
                                     "(the disagreement check).")
    second_opinion_certain: float = Field(
        0.65, ge=0, le=1, description="Rule confidence from which the disagreement check is "
                                      "skipped: it costs time on every complaint it runs on and "
                                      "the model rarely disputes a decision this clear (1.0: "
                                      "check every confident decision).")
    second_opinion_refresh_seconds: float = Field(
        300.0, gt=0, description="How often the router looks for new labelled examples or a "
                                 "changed training file and, when there are, retrains the second "
                                 "opinion (in the background).")

    # --- chat channels: WhatsApp and SMS (services/chat) ---
    chat_port: int = Field(8085, description="Port of the chat service (WhatsApp and SMS webhooks).")
    chat_intake_url: str = Field(
        "http://127.0.0.1:8080", description="Where the chat service reaches intake's API.")
    chat_whatsapp_api_key: SecretStr = Field(
        SecretStr(""), description="Intake API key of the `whatsapp` channel (disposisi admin "
                                   "create-key --name whatsapp); unset: WhatsApp is off.")
    chat_sms_api_key: SecretStr = Field(
        SecretStr(""), description="Intake API key of the `sms` channel; unset: SMS is off.")
    chat_window_seconds: float = Field(
        600.0, gt=0, description="After a citizen's first message, how long photos, a location "
                                 "and more text join the same complaint before it is submitted.")
    chat_done_words: list[str] = Field(
        ["kirim", "selesai"], description="A message that is only one of these words submits "
                                          "the complaint at once (case ignored).")
    chat_poll_seconds: float = Field(
        1.0, gt=0, description="Pause between the loops' looks for due drafts and messages.")
    chat_retry_base_seconds: float = Field(
        10.0, gt=0, description="Wait before retrying a failed submission or message; doubles "
                                "with each further failure.")
    chat_retry_max_seconds: float = Field(
        900.0, gt=0, description="Longest wait between two attempts.")
    chat_max_attempts: int = Field(
        20, ge=1, description="Attempts after which a message to a citizen is given up.")
    chat_http_timeout_seconds: float = Field(
        15.0, gt=0, description="Longest one call to intake or a provider may take.")
    chat_whatsapp_verify_token: SecretStr = Field(
        SecretStr(""), description="The Verify Token entered in Meta's webhook set-up (the GET "
                                   "handshake's hub.verify_token).")
    chat_whatsapp_app_secret: SecretStr = Field(
        SecretStr(""), description="The Meta app's secret: X-Hub-Signature-256 is the "
                                   "HMAC-SHA256 of each webhook body with it.")
    chat_whatsapp_access_token: SecretStr = Field(
        SecretStr(""), description="Bearer token of the Cloud API (sending, fetching media).")
    chat_whatsapp_phone_number_id: str = Field(
        "", description="The business phone number's id that messages are sent from.")
    chat_whatsapp_graph_url: str = Field(
        "https://graph.facebook.com", description="Base URL of the Graph API (tests: a fake).")
    chat_whatsapp_api_version: str = Field("v21.0", description="Graph API version in paths.")
    chat_sms_secret: SecretStr = Field(
        SecretStr(""), description="Shared secret the SMS gateway sends in X-Gateway-Secret.")
    chat_sms_gateway_url: str = Field(
        "", description="Where outgoing SMS are POSTed (JSON {to, text}); unset: none are sent.")
    chat_sms_gateway_token: SecretStr = Field(
        SecretStr(""), description="Bearer token for the SMS gateway's send URL.")

    # --- e-mail channel (services/mailbox) ---
    mailbox_port: int = Field(8086, description="Port of the mailbox service's API (health, metrics).")
    mailbox_smtp_host: str = Field("127.0.0.1", description="Address the inbound SMTP server listens on.")
    mailbox_smtp_port: int = Field(2525, description="Port of the inbound SMTP server.")
    mailbox_addresses: list[str] = Field(
        default_factory=list, description="The tenant's complaint addresses (e.g. "
                                          "[\"pengaduan@kota.example\"]); mail to any other "
                                          "recipient is refused (550). Empty: the SMTP server "
                                          "refuses every recipient.")
    mailbox_api_key: SecretStr | None = Field(
        None, repr=False, description="The email channel's API key (X-API-Key) the mailbox "
                                      "submits complaints with; its tenant is the mailbox's.")
    mailbox_intake_url: str = Field("http://127.0.0.1:8080", description="Where the mailbox reaches "
                                                                          "intake's API.")
    mailbox_max_bytes: int = Field(
        10_000_000, ge=1000, le=12_000_000,
        description="Largest mail accepted (SMTP SIZE); larger: 552. At most 12 MB: a mail is "
                    "stored whole (base64) in one document.")
    mailbox_relay_host: str = Field("127.0.0.1", description="Outbound SMTP relay for replies.")
    mailbox_relay_port: int = Field(25, description="Port of the outbound relay.")
    mailbox_relay_starttls: bool = Field(False, description="Upgrade the relay connection with STARTTLS.")
    mailbox_relay_username: str | None = Field(None, description="Relay user, if it needs one.")
    mailbox_relay_password: SecretStr | None = Field(None, repr=False, description="Relay password.")
    mailbox_from: str | None = Field(
        None, description="From address of replies; unset: the first of mailbox_addresses.")
    mailbox_poll_seconds: float = Field(
        1.0, gt=0, description="Pause between the loops that submit stored mail and send replies.")
    mailbox_retry_base_seconds: float = Field(
        30.0, gt=0, description="Wait before retrying a failed submission or reply; doubles each time.")
    mailbox_retry_max_seconds: float = Field(1800.0, gt=0, description="Longest wait between attempts.")
    mailbox_max_attempts: int = Field(
        20, ge=1, description="Attempts after which a reply is given up as failed (a stored inbound "
                              "mail is never given up: it is retried at the longest wait).")
    mailbox_send_timeout_seconds: float = Field(
        30.0, gt=0, description="Longest one call to intake or the relay may take.")
    mailbox_lease_seconds: float = Field(
        300.0, gt=0, description="How long a mailbox owns a mail it took to submit or send; one "
                                 "that died leaves it to another (or to itself restarted) after "
                                 "this. Longer than a submission with its attachments.")
    # --- performance: grouped submissions (issue 12, pass 2) ---
    submission_group_max: int = Field(
        256, ge=1, description="Most HTTP submissions intake stores in one write; concurrent "
                               "ones are grouped (no timer: an idle service writes at once).")
    # --- SP4N-LAPOR! connector (services/lapor) ---
    lapor_port: int = Field(8087, description="Port of the LAPOR! connector's API.")
    lapor_intake_url: str = Field(
        "http://127.0.0.1:8080", description="Base URL of intake's API, as `disposisi lapor "
                                             "import` reaches it to submit reports.")
    lapor_api_key: SecretStr = Field(
        SecretStr(""), description="The `lapor` channel's API key (`disposisi admin "
                                   "create-api-key --channel lapor`) that `disposisi lapor "
                                   "import` submits with.")
    lapor_import_timeout_seconds: float = Field(
        30.0, gt=0, description="Longest one submission to intake may take during an import.")
    # --- reports from a read model (open tickets' snapshot) ---
    report_open_rebuild_seconds: float = Field(
        3600, gt=0, description="How often the SLA service reads every open ticket again for "
                                "the compliance report and the open-ticket gauges (between, "
                                "it reads only the tickets written since): heals a change "
                                "whose write committed too late to be seen by those reads.")
    # --- consumer group membership (test speed) ---
    kafka_session_timeout_ms: int = Field(
        10_000, ge=1000, description="How long the group waits for a silent consumer before "
                                     "giving its partitions to others. The embedded broker "
                                     "(Tansu) holds every join for half of it, so the tests run "
                                     "with less; a real Kafka refuses less than its "
                                     "group.min.session.timeout.ms (6 s by default).")
    kafka_heartbeat_interval_ms: int = Field(
        3000, ge=100, description="Pause between a consumer's heartbeats; well under the session.")

    @model_validator(mode="after")
    def _credentials_complete(self) -> "Settings":
        # Messages name settings, never values: the values are secrets.
        sasl = self.kafka_security_protocol.startswith("SASL_")
        kafka_password = bool(self.kafka_sasl_password.get_secret_value()) or \
            self.kafka_sasl_password_file is not None
        if sasl and not (self.kafka_sasl_username and kafka_password):
            raise ValueError(f"kafka_security_protocol {self.kafka_security_protocol} needs "
                             "kafka_sasl_username and kafka_sasl_password (or _file)")
        if self.kafka_sasl_password.get_secret_value() and self.kafka_sasl_password_file:
            raise ValueError("set kafka_sasl_password or kafka_sasl_password_file, not both")
        if bool(self.kafka_ssl_certfile) != bool(self.kafka_ssl_keyfile):
            raise ValueError("kafka_ssl_certfile and kafka_ssl_keyfile go together")
        mongo_password = bool(self.mongodb_password.get_secret_value()) or \
            self.mongodb_password_file is not None
        if mongo_password and not self.mongodb_username:
            raise ValueError("mongodb_password (or _file) needs mongodb_username")
        if self.mongodb_username and not mongo_password:
            raise ValueError("mongodb_username needs mongodb_password (or _file)")
        if self.mongodb_password.get_secret_value() and self.mongodb_password_file:
            raise ValueError("set mongodb_password or mongodb_password_file, not both")
        return self

    @field_serializer("mongodb_url", when_used="json")
    def _url_without_password(self, url: str) -> str:
        return redact_url(url)


def as_environment(settings: Settings) -> dict[str, str]:
    """The settings as DISPOSISI_* variables, for a child process to read back the same: an
    unset optional setting stays unset (not the text "None"), lists as JSON, and secrets as
    themselves (a JSON dump masks them as "**********")."""
    env: dict[str, str] = {}
    for name, value in settings.model_dump(mode="json").items():
        raw = getattr(settings, name)
        if raw is None:
            continue
        if isinstance(raw, SecretStr):
            value = raw.get_secret_value()
        elif isinstance(raw, str):
            value = raw  # as set: the JSON dump hides a URL's password
        env[f"DISPOSISI_{name.upper()}"] = json.dumps(value) if isinstance(value, list | dict) \
            else str(value).lower() if isinstance(value, bool) else str(value)
    return env


def redact_url(url: str) -> str:
    """The URL with any password replaced, for printing, logs and settings dumps."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
    except ValueError:
        return url
    user, _, hosts = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{user.partition(':')[0]}:***@{hosts}"))
