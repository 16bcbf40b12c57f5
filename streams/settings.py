"""The worker's settings: one frozen object, read once from `ABUSEMON_*` variables.

Every field is named after its variable (`broker` is `ABUSEMON_BROKER`) and passed down from
the command line; nothing reads the environment anywhere else. Secrets are `SecretStr`: they
show as `**********` in any repr, str or table, and only the code that uses one reveals it.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from aiokafka.helpers import create_ssl_context
from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from detectors.actors import ActorConfig
from detectors.coordination import CoordinationConfig
from detectors.labels import LabelConfig
from detectors.pipeline import DetectionConfig

if TYPE_CHECKING:
    from faust.types.auth import CredentialsT


MIN_CONSOLE_TOKEN = 16


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ABUSEMON_", frozen=True, extra="ignore")

    broker: str = Field(
        "kafka://localhost:9092", description="Kafka bootstrap URL(s), comma-separated"
    )
    app_id: str = Field("abuse-monitor", description="consumer group and internal-topic prefix")
    content_topic: str = Field("content-events", description="input topic of content events")
    report_topic: str = Field("report-events", description="input topic of report events")
    labels_topic: str = Field("labels", description="input topic of analysts' labels")
    alerts_topic: str = Field("alerts", description="output topic of alerts")
    input_partitions: int = Field(
        8,
        ge=1,
        description="partitions of the input topics: the worker checks them before it starts, and it, replay, simulate and demo create missing ones with this many; evaluate places events as over this many",
    )
    partitions: int = Field(8, ge=1, description="partitions of internal and output topics")
    create_topics: bool = Field(
        True,
        description="the worker creates missing input topics; false: it waits for them (docs/configuration.md#topics)",
    )
    replication_factor: int = Field(1, ge=1, description="replication of topics the worker creates")

    # Kafka security (docs/security.md): every client (worker, console, commands) uses it.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT",
        description="PLAINTEXT, SSL (TLS), SASL_PLAINTEXT or SASL_SSL (SASL over TLS)",
    )
    kafka_sasl_mechanism: Literal["", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "",
        validate_default=True,
        description="PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; required with the SASL protocols",
    )
    kafka_sasl_username: str = Field(
        "", validate_default=True, description="SASL user; required with the SASL protocols"
    )
    kafka_sasl_password: SecretStr = Field(
        SecretStr(""),
        validate_default=True,
        description="SASL password (secret); required with the SASL protocols",
    )
    kafka_ssl_cafile: str = Field(
        "",
        validate_default=True,
        description="PEM file of the CAs that sign the brokers' certificates; empty: the system's",
    )
    kafka_ssl_certfile: str = Field(
        "",
        validate_default=True,
        description="PEM file of this client's certificate chain, for mutual TLS; empty: none",
    )
    kafka_ssl_keyfile: str = Field(
        "",
        validate_default=True,
        description="PEM file of this client's private key; empty: it is in the certfile",
    )
    kafka_ssl_key_password: SecretStr = Field(
        SecretStr(""),
        validate_default=True,
        description="password of an encrypted client key (secret); empty: the key is not encrypted",
    )
    kafka_ssl_check_hostname: bool = Field(
        True, description="check that a broker's certificate names the host connected to"
    )

    store: str = Field("memory://", description="Faust table store: memory:// or rocksdb://")
    data_dir: str = Field("/tmp/abuse-monitor", description="where the worker keeps local state")
    checkpoint_s: float = Field(
        60.0,
        gt=0,
        description="wall-clock interval between checkpoints of each unit of detector state",
    )
    metrics_host: str = Field(
        "127.0.0.1",
        description="address of the /metrics endpoint: loopback unless set (0.0.0.0 in a pod; see docs/security.md)",
    )
    metrics_port: int = Field(9464, ge=0, le=65535, description="port of the /metrics endpoint")
    log_level: str = Field("info", description="debug, info, warning or error")

    # `worker --processes N`: the supervisor of N worker processes (docs/scaling.md).
    process_restart_backoff_s: float = Field(
        1.0,
        gt=0,
        description="with worker --processes: wait before a crashed worker process is started again, doubled for each crash in a row before it was ready, up to 30 s",
    )
    process_start_failures: int = Field(
        5,
        ge=1,
        description="with worker --processes: crashes in a row of one worker process before it was ready that stop the supervisor (exit status 1)",
    )
    process_stop_timeout_s: float = Field(
        30.0,
        gt=0,
        description="with worker --processes: how long the supervisor waits for its worker processes to stop on SIGTERM or SIGINT before it kills them",
    )

    # Consumer-group timing: short enough that a restarted worker rejoins quickly.
    session_timeout_s: float = Field(10.0, gt=0, description="consumer-group session timeout")
    heartbeat_interval_s: float = Field(1.0, gt=0, description="consumer-group heartbeat")
    rebalance_timeout_s: float = Field(8.0, gt=0, description="consumer-group rebalance timeout")
    fetch_max_wait_s: float = Field(
        0.1,
        gt=0,
        le=30,
        description="longest a consumer's fetch waits at the broker when it has nothing new (docs/scaling.md: each hop of a window's close through the internal topic may wait this long)",
    )

    # Event time.
    window_s: float = Field(60.0, gt=0, description="width of the event-time windows")
    lateness_s: float = Field(30.0, ge=0, description="how late an event may be and still count")
    max_future_s: float = Field(
        86400.0,
        gt=0,
        description="events stamped further ahead of the wall clock are dead-lettered",
    )
    source_idle_s: float = Field(
        120.0, gt=0, description="wall-clock silence before a partition stops holding back windows"
    )
    dedup_horizon_s: float = Field(
        3600.0, ge=0, description="event time over which event ids are remembered"
    )
    dedup_max_ids: int = Field(
        200_000, ge=1, description="most event ids remembered per input partition"
    )

    # Spike detection and alerting.
    spike_threshold: float = Field(
        6.0, gt=0, description="score at which a window is a spike (critical at twice it)"
    )
    spike_min_count: float = Field(
        5.0, ge=0, description="fewest events in a window that can be a spike"
    )
    warmup_windows: int = Field(30, ge=0, description="windows learned before the first alert")
    cooldown_s: float = Field(600.0, ge=0, description="quiet event time that resolves an alert")
    update_every: int = Field(
        10, ge=1, description="flagged windows between updates of a firing alert"
    )
    account_series_ttl_s: float = Field(
        3600.0, gt=0, description="idle time after which a per-account series expires"
    )
    dimension_series_ttl_s: float = Field(
        86400.0, gt=0, description="idle time after which a surface, kind or reason series expires"
    )
    max_series: int = Field(
        50_000,
        ge=10,
        description="most series per stage-2 partition (least recently active evicted)",
    )
    accumulate_horizon_s: float = Field(
        3600.0,
        gt=0,
        description="span over which distinct accounts turning to one account are summed",
    )
    accumulate_min: float = Field(
        15.0, ge=1, description="fewest distinct accounts in that span that are ever flagged"
    )
    accumulate_ratio: float = Field(
        4.0, gt=1, description="times an account's usual number over that span that is flagged"
    )
    accumulate_ttl_s: float = Field(
        86400.0,
        gt=0,
        description="idle time after which an account's first-contact series and baseline expire",
    )
    accumulate_long_horizon_s: float = Field(
        10800.0,
        ge=0,
        description="a longer span over which they are summed and judged too (0 or at most "
        "the span above: none)",
    )
    shift_horizon_s: float = Field(
        1800.0,
        gt=0,
        description="span over which a dense content series is summed to find sustained shifts",
    )
    shift_threshold: float = Field(
        5.0,
        gt=0,
        description="standard deviations above its expected sum at which that span is flagged",
    )
    shift_ratio: float = Field(
        1.3, gt=1, description="fewest times its expected sum at which that span is flagged"
    )

    # Actor anomaly detection.
    actor_model: str = Field(
        "quantile",
        pattern="^(quantile|hst|svm)$",
        description="population model: quantile (typical ranges), hst (HalfSpaceTrees) or svm",
    )
    actor_quantile: float = Field(
        0.99, gt=0.5, lt=1, description="quantile of actor scores above which an actor is unusual"
    )
    actor_warmup: int = Field(
        500, ge=0, description="actors scored per stage-2 partition before the first actor alert"
    )
    actor_min_events: float = Field(
        5.0, ge=1, description="fewest events in 10 min for an actor alert (or the hour's)"
    )
    actor_min_events_1h: float = Field(
        10.0, ge=1, description="fewest events in an hour for an actor alert (or the 10 min's)"
    )
    actor_cooldown_s: float = Field(
        1800.0,
        ge=0,
        description="quiet event time that resolves an actor alert (at least an hour for one "
        "raised on the hour's scale)",
    )
    actor_ttl_s: float = Field(
        21600.0, gt=0, description="idle event time after which an actor's state expires"
    )
    max_actors: int = Field(
        250_000,
        ge=10,
        description="most actors per stage-2 partition (least recently active evicted)",
    )

    # Coordinated behaviour: campaigns and brigades.
    campaign_window_s: float = Field(
        1800.0, gt=0, description="event time a text bucket or new domain keeps its posts"
    )
    campaign_min_actors: int = Field(
        8, ge=2, description="fewest distinct accounts in a text bucket or new domain to compare"
    )
    campaign_threshold: float = Field(
        3.0,
        gt=0,
        description="campaign score to alert: accounts / min actors x (1 + indicators)",
    )
    new_domain_s: float = Field(
        86400.0, gt=0, description="how long after it is first seen a domain counts as new"
    )
    campaign_domain_window_s: float = Field(
        7200.0,
        gt=0,
        description="event time a new domain keeps its posts for slow campaigns (at most ABUSEMON_CAMPAIGN_WINDOW_S: off)",
    )
    brigade_window_s: float = Field(
        1800.0, gt=0, description="event time over which reports against one account are grouped"
    )
    brigade_min_reporters: int = Field(
        15, ge=2, description="fewest distinct reporters of one account for a report_brigade"
    )
    coordination_cooldown_s: float = Field(
        1800.0, ge=0, description="event time without growth that resolves a campaign or brigade"
    )
    max_coordination_keys: int = Field(
        200_000,
        ge=10,
        description="most text buckets, domains and targets per stage-2 partition",
    )
    synchrony_horizon_s: float = Field(
        10800.0, gt=0, description="event time over which an author's activity times are compared"
    )
    synchrony_slot_s: float = Field(
        30.0, gt=0, description="activity times within one slot of this many seconds are in step"
    )
    synchrony_min_slots: int = Field(
        5, ge=2, description="fewest distinct slots in the horizon for an author's schedule"
    )
    synchrony_min_accounts: int = Field(
        5, ge=2, description="fewest accounts keeping one schedule for a synchronised campaign"
    )
    synchrony_similarity: float = Field(
        0.5,
        gt=0,
        le=1,
        description="Jaccard similarity of an account's slots to the group's schedule to join it",
    )
    synchrony_cooldown_s: float = Field(
        3600.0, ge=0, description="event time out of step that resolves a synchronised campaign"
    )
    max_schedules: int = Field(
        200_000, ge=10, description="most authors whose activity times are kept per input partition"
    )

    # Alertmanager (docs/alertmanager.md).
    alertmanager_url: str = Field(
        "",
        description="Alertmanager base URL (http://host:9093) to push alerts to; empty: no pushing",
    )
    alertmanager_timeout_s: float = Field(
        5.0, gt=0, description="timeout of one push to Alertmanager"
    )
    alertmanager_resend_s: float = Field(
        300.0, gt=0, description="interval at which open alerts are pushed to Alertmanager again"
    )
    alertmanager_expire_s: float = Field(
        3600.0,
        gt=0,
        description="how far ahead an open alert's endsAt is set: Alertmanager ends it then unless it is pushed again",
    )
    runbook_base_url: str = Field(
        "",
        description="prefix of runbook links in pushed alerts, e.g. the repository's web URL (docs/runbooks/<page>.md is appended)",
    )
    evidence_base_url: str = Field(
        "",
        description="prefix of evidence links in pushed alerts (the alert_id is appended); empty: none",
    )

    # The labelling loop (docs/labels.md): analysts' verdicts, the store, the triage console.
    alert_store: str = Field(
        "",
        description="alert and label store: sqlite:///path/file.db or postgresql://user@host/db; empty: none",
    )
    label_suppress_s: float = Field(
        86400.0,
        ge=0,
        description="event time for which an entity labelled benign raises no new alert",
    )
    label_abusive_ttl_s: float = Field(
        604800.0,
        ge=0,
        description="event time for which later alerts on an actor labelled abusive are raised to critical",
    )
    precision_window_s: float = Field(
        604800.0, gt=0, description="event time over which precision per detector is computed"
    )
    audit_rate: float = Field(
        0.1,
        ge=0,
        le=1,
        description="share of labelled alerts queued again for a second labeller (agreement audit)",
    )
    console_host: str = Field(
        "127.0.0.1", description="address the triage console listens on (loopback by default)"
    )
    console_port: int = Field(8088, ge=0, le=65535, description="port of the triage console")
    console_token: SecretStr = Field(
        SecretStr(""),
        description="token the triage console asks for, at least 16 characters; empty: a random one, printed at start",
    )
    labeler_pseudonym_key: SecretStr = Field(
        SecretStr(""),
        description="key of the pseudonyms that stand for labellers in metrics (secret); empty: a random one per process",
    )

    @field_validator("broker")
    @classmethod
    def _kafka_url(cls, value: str) -> str:
        hosts = value.removeprefix("kafka://")
        if not hosts or any(":" not in host for host in hosts.split(",")):
            raise ValueError("expected kafka://host:port[,host:port...]")
        return value if value.startswith("kafka://") else f"kafka://{value}"

    @field_validator("kafka_sasl_mechanism", "kafka_sasl_username", "kafka_sasl_password")
    @classmethod
    def _sasl(cls, value: str | SecretStr, info: ValidationInfo) -> str | SecretStr:
        protocol = info.data.get("kafka_security_protocol", "PLAINTEXT")
        given = value.get_secret_value() if isinstance(value, SecretStr) else value
        if protocol.startswith("SASL") and not given:
            raise ValueError(f"required with ABUSEMON_KAFKA_SECURITY_PROTOCOL={protocol}")
        if given and not protocol.startswith("SASL"):
            raise ValueError(f"set, but ABUSEMON_KAFKA_SECURITY_PROTOCOL={protocol} uses no SASL")
        return value

    @field_validator(
        "kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile", "kafka_ssl_key_password"
    )
    @classmethod
    def _ssl(cls, value: str | SecretStr, info: ValidationInfo) -> str | SecretStr:
        protocol = info.data.get("kafka_security_protocol", "PLAINTEXT")
        if isinstance(value, SecretStr):
            if value.get_secret_value() and not info.data.get("kafka_ssl_certfile"):
                raise ValueError("set, but ABUSEMON_KAFKA_SSL_CERTFILE is not")
            return value
        if not value:
            return value
        if not protocol.endswith("SSL"):
            raise ValueError(f"set, but ABUSEMON_KAFKA_SECURITY_PROTOCOL={protocol} uses no TLS")
        if not Path(value).is_file():
            raise ValueError(f"no such file: {value}")
        if info.field_name == "kafka_ssl_keyfile" and not info.data.get("kafka_ssl_certfile"):
            raise ValueError("set, but ABUSEMON_KAFKA_SSL_CERTFILE is not")
        return value

    @field_validator("console_token", mode="before")
    @classmethod
    def _console_token(cls, value: object) -> object:
        given = value.get_secret_value() if isinstance(value, SecretStr) else value
        if not isinstance(given, str):
            return value
        given = given.strip()  # a stray newline from a file or a Secret is not part of it
        if given and len(given) < MIN_CONSOLE_TOKEN:
            raise ValueError(f"must be at least {MIN_CONSOLE_TOKEN} characters (or empty)")
        return SecretStr(given)

    @field_validator("alertmanager_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("expected http://host:port or https://host:port, or empty")
        return value

    @model_validator(mode="after")
    def _tls_files_load(self) -> Settings:
        try:
            self.kafka_ssl_context()
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            raise ValueError(
                f"ABUSEMON_KAFKA_SSL_*: cannot load the TLS certificates or key: {exc}"
            ) from None
        return self

    @model_validator(mode="after")
    def _resend_before_expiry(self) -> Settings:
        if self.alertmanager_resend_s >= self.alertmanager_expire_s:
            raise ValueError(
                "ABUSEMON_ALERTMANAGER_RESEND_S must be less than ABUSEMON_ALERTMANAGER_EXPIRE_S"
            )
        return self

    @property
    def bootstrap_servers(self) -> str:
        return self.broker.removeprefix("kafka://")

    @property
    def signal_topic(self) -> str:
        return f"{self.app_id}-signal-partials"

    def kafka_ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context of every Kafka connection, or None without TLS."""
        if not self.kafka_security_protocol.endswith("SSL"):
            return None
        context: ssl.SSLContext = create_ssl_context(
            cafile=self.kafka_ssl_cafile or None,
            certfile=self.kafka_ssl_certfile or None,
            keyfile=self.kafka_ssl_keyfile or None,
            # Always a string: OpenSSL would otherwise prompt on the terminal for a key's password.
            password=self.kafka_ssl_key_password.get_secret_value(),
        )
        context.check_hostname = self.kafka_ssl_check_hostname
        return context

    def kafka_client_options(self) -> dict[str, Any]:
        """Security keyword arguments for every aiokafka client (producer, consumer, admin)."""
        options: dict[str, Any] = {"security_protocol": self.kafka_security_protocol}
        context = self.kafka_ssl_context()
        if context is not None:
            options["ssl_context"] = context
        if self.kafka_security_protocol.startswith("SASL"):
            options["sasl_mechanism"] = self.kafka_sasl_mechanism
            options["sasl_plain_username"] = self.kafka_sasl_username
            options["sasl_plain_password"] = self.kafka_sasl_password.get_secret_value()
        return options

    def kafka_consumer_options(self) -> dict[str, Any]:
        """`kafka_client_options()` and the fetch wait, for a consumer that follows topics."""
        return {**self.kafka_client_options(), "fetch_max_wait_ms": self.fetch_max_wait_ms}

    @property
    def fetch_max_wait_ms(self) -> int:
        return max(1, round(self.fetch_max_wait_s * 1000))

    def faust_credentials(self) -> CredentialsT | None:
        """The same security for the Faust app (`broker_credentials`); None for PLAINTEXT."""
        from faust.auth import SASLCredentials, SSLCredentials  # Faust is slow to import

        context = self.kafka_ssl_context()
        if self.kafka_security_protocol.startswith("SASL"):
            return SASLCredentials(
                username=self.kafka_sasl_username,
                password=self.kafka_sasl_password.get_secret_value(),
                ssl_context=context,  # SASL_SSL when given, SASL_PLAINTEXT when None
                mechanism=self.kafka_sasl_mechanism,
            )
        if context is not None:
            return SSLCredentials(context)
        return None

    def secrets(self) -> list[SecretStr]:
        """Every secret setting, for `streams.logs.redact_secrets`."""
        return [value for value in dict(self).values() if isinstance(value, SecretStr)]

    def environment(self) -> dict[str, str]:
        """`ABUSEMON_*` variables that give these settings to a child process, secrets revealed.

        For a child's environment only: never print or log it.
        """
        variables = {}
        for name, value in self.model_dump().items():
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            variables[f"ABUSEMON_{name.upper()}"] = str(value)
        return variables

    @classmethod
    def table(cls) -> str:
        """The settings as a Markdown table, for docs/configuration.md."""
        rows = ["| variable | default | meaning |", "|---|---|---|"]
        for name, field in cls.model_fields.items():
            default = f"`{field.default}`" if str(field.default) != "" else "(empty)"
            rows.append(f"| `ABUSEMON_{name.upper()}` | {default} | {field.description} |")
        return "\n".join(rows)

    def detection(self) -> DetectionConfig:
        return DetectionConfig(
            window_s=self.window_s,
            lateness_s=self.lateness_s,
            spike_threshold=self.spike_threshold,
            spike_min_count=self.spike_min_count,
            warmup_windows=self.warmup_windows,
            cooldown_s=self.cooldown_s,
            update_every=self.update_every,
            account_series_ttl_s=self.account_series_ttl_s,
            dimension_series_ttl_s=self.dimension_series_ttl_s,
            max_series=self.max_series,
            dedup_horizon_s=self.dedup_horizon_s,
            dedup_max_ids=self.dedup_max_ids,
            accumulate_horizon_s=self.accumulate_horizon_s,
            accumulate_min=self.accumulate_min,
            accumulate_ratio=self.accumulate_ratio,
            accumulate_ttl_s=self.accumulate_ttl_s,
            accumulate_long_horizon_s=self.accumulate_long_horizon_s,
            shift_horizon_s=self.shift_horizon_s,
            shift_threshold=self.shift_threshold,
            shift_ratio=self.shift_ratio,
        )

    def actor_detection(self) -> ActorConfig:
        return ActorConfig(
            window_s=self.window_s,
            model=self.actor_model,
            quantile=self.actor_quantile,
            warmup=self.actor_warmup,
            min_events=self.actor_min_events,
            min_events_1h=self.actor_min_events_1h,
            cooldown_s=self.actor_cooldown_s,
            update_every=self.update_every,
            ttl_s=self.actor_ttl_s,
            max_actors=self.max_actors,
        )

    def coordination(self) -> CoordinationConfig:
        return CoordinationConfig(
            window_s=self.window_s,
            campaign_window_s=self.campaign_window_s,
            min_actors=self.campaign_min_actors,
            campaign_threshold=self.campaign_threshold,
            new_domain_s=self.new_domain_s,
            domain_window_s=self.campaign_domain_window_s,
            brigade_window_s=self.brigade_window_s,
            min_reporters=self.brigade_min_reporters,
            cooldown_s=self.coordination_cooldown_s,
            max_keys=self.max_coordination_keys,
            synchrony_horizon_s=self.synchrony_horizon_s,
            synchrony_slot_s=self.synchrony_slot_s,
            synchrony_min_slots=self.synchrony_min_slots,
            min_synchronised=self.synchrony_min_accounts,
            synchrony_similarity=self.synchrony_similarity,
            synchrony_cooldown_s=self.synchrony_cooldown_s,
            max_schedules=self.max_schedules,
        )

    def labelling(self) -> LabelConfig:
        return LabelConfig(
            suppress_s=self.label_suppress_s,
            abusive_ttl_s=self.label_abusive_ttl_s,
            precision_window_s=self.precision_window_s,
        )
