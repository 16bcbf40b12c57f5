"""The worker's settings: one frozen object, read once from `ABUSEMON_*` variables.

Every field is named after its variable (`broker` is `ABUSEMON_BROKER`) and passed down from
the command line; nothing reads the environment anywhere else.
"""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from detectors.pipeline import DetectionConfig


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ABUSEMON_", frozen=True, extra="ignore")

    broker: str = Field(
        "kafka://localhost:9092", description="Kafka bootstrap URL(s), comma-separated"
    )
    app_id: str = Field("abuse-monitor", description="consumer group and internal-topic prefix")
    content_topic: str = "content-events"
    report_topic: str = "report-events"
    labels_topic: str = "labels"
    alerts_topic: str = "alerts"
    input_partitions: int = Field(8, ge=1, description="partitions of the input topics")
    partitions: int = Field(8, ge=1, description="partitions of internal and output topics")
    replication_factor: int = Field(1, ge=1)
    store: str = Field("memory://", description="Faust table store: memory:// or rocksdb://")
    data_dir: str = Field("/tmp/abuse-monitor", description="where the worker keeps local state")
    metrics_host: str = "0.0.0.0"
    metrics_port: int = Field(9464, ge=0, le=65535)
    log_level: str = "info"

    # Consumer-group timing: short enough that a restarted worker rejoins quickly.
    session_timeout_s: float = 10.0
    heartbeat_interval_s: float = 1.0
    rebalance_timeout_s: float = 8.0

    # Event time.
    window_s: float = Field(60.0, gt=0)
    lateness_s: float = Field(30.0, ge=0)
    source_idle_s: float = Field(
        120.0, gt=0, description="wall-clock silence before a partition stops holding back windows"
    )
    dedup_horizon_s: float = Field(3600.0, ge=0)
    dedup_max_ids: int = Field(200_000, ge=1)

    # Spike detection and alerting.
    spike_threshold: float = Field(6.0, gt=0)
    spike_min_count: float = Field(10.0, ge=0)
    warmup_windows: int = Field(30, ge=0)
    cooldown_s: float = Field(600.0, ge=0)
    update_every: int = Field(10, ge=1)
    account_series_ttl_s: float = Field(3600.0, gt=0)
    dimension_series_ttl_s: float = Field(86400.0, gt=0)
    max_series: int = Field(50_000, ge=10)

    @field_validator("broker")
    @classmethod
    def _kafka_url(cls, value: str) -> str:
        hosts = value.removeprefix("kafka://")
        if not hosts or any(":" not in host for host in hosts.split(",")):
            raise ValueError("expected kafka://host:port[,host:port...]")
        return value if value.startswith("kafka://") else f"kafka://{value}"

    @property
    def bootstrap_servers(self) -> str:
        return self.broker.removeprefix("kafka://")

    @property
    def signal_topic(self) -> str:
        return f"{self.app_id}-signal-partials"

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
        )
