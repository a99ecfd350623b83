"""The one settings object, read from ``NUDGEFLOW_*`` environment variables."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.detect.signals.thresholds import SignalThresholds

__all__ = ["Settings"]


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    """Every setting of a nudgeflow deployment; see the README's settings table."""

    model_config = SettingsConfigDict(env_prefix="NUDGEFLOW_", extra="ignore", frozen=True)

    # --- where things are -------------------------------------------------------------------
    app_id: str = Field("nudgeflow", description="Faust app id: consumer group and topic prefix.")
    broker: str = Field("kafka://localhost:9092", description="Kafka bootstrap URL(s).")
    broker_flavour: Literal["kafka", "tansu"] = Field(
        "kafka",
        description="`tansu` turns on the compatibility shim for the embedded broker.",
    )
    redis_url: SecretStr = Field(
        SecretStr("redis://localhost:6379/0"), description="Redis URL (may hold a password)."
    )
    web_host: str = Field("localhost", description="Host name other workers use to reach this one.")
    web_bind: str = Field("0.0.0.0", description="Interface the HTTP server listens on.")
    web_port: int = Field(6066, ge=1, le=65535, description="HTTP port of the worker.")
    topic_partitions: int = Field(
        8, ge=1, description="Partitions of `clicks` and every table changelog."
    )
    topic_replication_factor: int = Field(1, ge=1, description="Replication of created topics.")
    table_standby_replicas: int = Field(
        0, ge=0, description="Standby copies of each table partition on other workers."
    )
    stream_buffer_maxsize: int = Field(
        65536, ge=1, description="Events buffered per partition ahead of the agent."
    )
    batch_max_events: int = Field(
        1000,
        ge=1,
        le=100_000,
        description="Most events the agent folds before it delivers and acks.",
    )
    data_dir: str = Field(".nudgeflow", description="Worker data directory (table stores).")

    # --- consumer-group timing (see README: "Why these broker timings") ----------------------
    broker_session_timeout_s: float = Field(
        10.0, gt=0, description="Consumer session timeout: a stuck worker is evicted after this."
    )
    broker_heartbeat_interval_s: float = Field(1.0, gt=0, description="Consumer heartbeat.")
    broker_commit_interval_s: float = Field(
        0.5, gt=0, description="How often processed offsets are committed."
    )
    fetch_max_wait_ms: int = Field(
        500,
        ge=0,
        le=5000,
        description="Longest wait of one fetch for new data (default 20 with the tansu flavour).",
    )

    # --- HTTP collector ---------------------------------------------------------------------
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated accepted `X-Api-Key` values; empty means no key needed.",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Comma-separated origins allowed to call the API."
    )

    # --- delivery ---------------------------------------------------------------------------
    redis_stream_maxlen: int = Field(
        100_000, ge=1, description="Approximate length cap of the interventions Redis stream."
    )

    # --- per-customer state -----------------------------------------------------------------
    recent_events_max: int = Field(
        32, ge=8, le=1024, description="Events kept in each customer's recent-event window."
    )
    seen_event_ids_max: int = Field(
        64, ge=16, le=8192, description="Event ids remembered per customer to drop repeats."
    )

    # --- garbage collection (app/garbage_collection.py) -------------------------------------
    gc_freeze_interval_s: float = Field(
        2.0,
        ge=0,
        description="How often surviving objects are frozen out of the collector's scans "
        "(0: never).",
    )
    gc_full_collection_interval_s: float = Field(
        3600.0,
        ge=0,
        description="How often frozen objects are collected in full, for cycles that died "
        "frozen (0: never).",
    )

    # --- signal thresholds ------------------------------------------------------------------
    rage_click_min_clicks: int = Field(3, ge=2, description="Clicks that make a rage click.")
    rage_click_window_ms: int = Field(1000, gt=0, description="Rage-click time window.")
    rage_click_radius_px: float = Field(30.0, gt=0, description="Rage-click distance limit.")
    payment_failed_attempts: int = Field(
        2, ge=1, description="Failed payment attempts that make a payment failure."
    )
    step_loop_min_returns: int = Field(
        2, ge=1, description="Back-and-forth checkout returns that make a step loop."
    )

    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("api_keys", "cors_origins", mode="before")
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    @model_validator(mode="before")
    @classmethod
    def _short_fetch_wait_on_tansu(cls, data: object) -> object:
        # Tansu is not woken by new data: a fetch that finds none sleeps half its remaining
        # wait before it looks again, so an event that arrives meanwhile waits up to half
        # the wait. Apache Kafka answers as soon as data arrives: its usual 500 ms is free.
        if isinstance(data, dict) and data.get("broker_flavour") == "tansu":
            data.setdefault("fetch_max_wait_ms", 20)
        return data

    @model_validator(mode="after")
    def _check_timing(self) -> Settings:
        if self.broker_heartbeat_interval_s * 3 > self.broker_session_timeout_s:
            raise ValueError(
                "broker_heartbeat_interval_s must be at most a third of broker_session_timeout_s"
            )
        return self

    @property
    def signal_thresholds(self) -> SignalThresholds:
        """The detector thresholds, as the pure detectors take them."""
        return SignalThresholds(
            rage_click_min_clicks=self.rage_click_min_clicks,
            rage_click_window_ms=self.rage_click_window_ms,
            rage_click_radius_px=self.rage_click_radius_px,
            payment_failed_attempts=self.payment_failed_attempts,
            step_loop_min_returns=self.step_loop_min_returns,
        )
