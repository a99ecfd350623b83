"""The one settings object, read from ``NUDGEFLOW_*`` environment variables."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.access import TrustedProxies
from app.decide.policy import PolicyRules
from app.detect.clicks import (
    DEFAULT_NO_RESPONSE_SELECTORS,
    DEFAULT_REPEAT_CLICK_SELECTORS,
    ClickRules,
)
from app.detect.pipeline import Rules
from app.detect.signals import CATALOGUE
from app.detect.signals.thresholds import SignalThresholds
from app.detect.state import StateLimits, TimeRules

__all__ = ["Settings"]

# A secret shorter than this can be guessed from what it signs or hashes.
_MIN_SECRET_CHARS = 16


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    """Every setting of a nudgeflow deployment; see the README's settings table."""

    # hide_input_in_errors: a start-up error must not print the keys, salts and the Redis
    # password it was given.
    model_config = SettingsConfigDict(
        env_prefix="NUDGEFLOW_", extra="ignore", frozen=True, hide_input_in_errors=True
    )

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
        description="Most events the agent folds before it delivers and acks; a worker behind "
        "is handed this many at a time.",
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
    broker_commit_interval_behind_s: float = Field(
        3.0,
        gt=0,
        description="Longest time between commits while the worker is behind (a full batch "
        "of events waiting for the agent), unless 10 000 customers changed first: a commit "
        "writes every customer changed since the last, so a catch-up folds more of a "
        "customer's events into one write.",
    )
    fetch_max_wait_ms: int = Field(
        500,
        ge=0,
        le=5000,
        description="Longest wait of one fetch for new data (default 20 with the tansu flavour).",
    )

    # --- HTTP collector ---------------------------------------------------------------------
    ingest_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated publishable `X-Api-Key` values for browsers: they may "
        "only send events (`POST /v1/events`); needs `NUDGEFLOW_API_KEYS`.",
    )
    stream_token_secret: SecretStr = Field(
        SecretStr(""),
        description="Key of the per-customer `?token=` (hex HMAC-SHA256 of the customer id) "
        "that opens one customer's interventions stream; needs `NUDGEFLOW_API_KEYS`.",
    )
    customer_id_salt: SecretStr = Field(
        SecretStr(""),
        description="When set, customer ids are replaced by their HMAC-SHA256 (hex) with "
        "this key at the collector, before they enter Kafka (at least 16 characters).",
    )
    rate_limit_key_per_s: float = Field(
        1000.0, ge=0, description="Requests per second one API key may make (0: no limit)."
    )
    rate_limit_key_burst: int = Field(2000, ge=1, description="Burst allowed per API key.")
    rate_limit_ip_per_s: float = Field(
        20.0,
        ge=0,
        description="Requests per second one client address (an IPv6 /64) may make without "
        "a secret API key (0: no limit).",
    )
    rate_limit_ip_burst: int = Field(100, ge=1, description="Burst allowed per client address.")
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated addresses or networks of proxies whose "
        "`X-Forwarded-For` names the client (none: the TCP peer is the client).",
    )
    http_idle_timeout_s: float = Field(
        30.0,
        gt=0,
        description="A connection that sends no complete request head within this long of "
        "opening (or of its last answer) is closed: idle keep-alive and slow headers.",
    )
    http_body_timeout_s: float = Field(
        10.0, gt=0, description="A request body not fully received within this long gets 408."
    )
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated accepted `X-Api-Key` values; empty means no key needed.",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Comma-separated origins allowed to call the API."
    )
    demo: bool = Field(
        False,
        description="Serve the demo shop with its chat widget at `/demo/` (`nudgeflow demo`).",
    )

    # --- delivery ---------------------------------------------------------------------------
    redis_stream_maxlen: int = Field(
        100_000, ge=1, description="Approximate length cap of the interventions Redis stream."
    )
    sse_heartbeat_s: float = Field(
        15.0,
        gt=0,
        le=300,
        description="Seconds without an intervention before an open SSE stream gets a comment "
        "(proxies close idle connections; a write is how the worker learns a client left).",
    )
    intervention_retention_days: int = Field(
        30,
        ge=1,
        description="How long Redis remembers a delivered intervention (for feedback), its "
        "outcomes and the uplift counts.",
    )

    # --- event time (contract §1: time rules) -----------------------------------------------
    max_future_skew_s: int = Field(
        300, ge=0, description="Events further ahead of the receiver's clock are refused."
    )
    allowed_lateness_ms: int = Field(
        5000,
        ge=0,
        description="Events further behind their session's newest event are late: they "
        "update the profile and trigger nothing.",
    )
    session_timeout_s: int = Field(
        1800, ge=60, description="Event-time inactivity that ends a session."
    )
    customer_ttl_days: float = Field(
        30.0, gt=0, description="Customers idle this long (event time) are deleted."
    )
    timer_tick_s: float = Field(
        1.0,
        gt=0,
        description="How often idle partitions that follow the wall clock check their timers.",
    )
    expiry_sweep_interval_s: float = Field(
        10.0, gt=0, description="How often ended sessions and expired customers are swept."
    )

    # --- policy (app/decide/policy.py) and uplift (app/decide/uplift.py) ---------------------
    cooldown_reason_s: int = Field(
        600, ge=0, description="After a decision, the same reason waits this long (event time)."
    )
    cooldown_any_s: int = Field(
        120,
        ge=0,
        description="After a decision, any other reason waits this long, unless more urgent.",
    )
    cap_per_session: int = Field(3, ge=1, description="Most decisions in one session.")
    cap_per_day: int = Field(
        5, ge=1, description="Most decisions per customer in 24 h of event time."
    )
    quiet_after_purchase_s: int = Field(
        1800, ge=0, description="No offer and no reminder this long after a purchase."
    )
    shadow_reasons: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Reasons decided and recorded but never delivered (comma-separated).",
    )
    holdout_share: float = Field(
        0.05,
        ge=0,
        le=1,
        description="Share of customers (stable hash) whose decisions are recorded, not sent.",
    )
    conversion_window_h: float = Field(
        24.0, gt=0, description="A purchase this long after a decision counts as its conversion."
    )

    # --- online models (app/detect/models, app/detect/learning.py) -------------------------
    learning_enabled: bool = Field(
        True,
        description="Online models per `clicks` partition: shop baselines, abandonment risk, "
        "session anomaly, the variant bandit.",
    )

    # --- per-customer state -----------------------------------------------------------------
    recent_events_max: int = Field(
        32, ge=8, le=1024, description="Events kept in each customer's recent-event window."
    )
    seen_event_ids_max: int = Field(
        32,
        ge=16,
        le=8192,
        description="Event ids remembered per customer to drop a sender's "
        "repeats (a replay after a crash is dropped by offset).",
    )
    live_sessions_max: int = Field(
        4, ge=1, le=32, description="Live sessions (tabs, devices) kept per customer."
    )
    decoded_states_max: int = Field(
        20_000,
        ge=1,
        description="Customer states held decoded, the most recently written; the others are "
        "held encoded (a third of the memory) and decoded when read.",
    )

    # --- webhooks (contract §3) --------------------------------------------------------------
    webhook_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="URLs each intervention is POSTed to (comma-separated; none: no webhooks).",
    )
    webhook_secret: SecretStr = Field(
        SecretStr(""), description="Shared secret of the `X-Nudgeflow-Signature` HMAC."
    )
    webhook_timeout_s: float = Field(5.0, gt=0, description="One webhook POST's time limit.")
    webhook_max_attempts: int = Field(
        6, ge=1, description="Tries per URL before the intervention goes to the dead letters."
    )
    webhook_backoff_s: float = Field(
        0.5, gt=0, description="Wait before the first retry; doubled (with jitter) each time."
    )
    webhook_backoff_max_s: float = Field(60.0, gt=0, description="Longest wait between tries.")

    # --- garbage collection (app/runtime/garbage_collection.py) and the interpreter lock ---
    gc_young_threshold: int = Field(
        50_000,
        ge=0,
        description="Container allocations between young garbage collections (CPython: 700; "
        "0 keeps CPython's).",
    )
    gc_freeze_interval_s: float = Field(
        0.5,
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

    gil_switch_interval_ms: float = Field(
        1.0,
        gt=0,
        description="How long a busy thread keeps the interpreter while another waits "
        "(CPython: 5). Faust's consumer thread needs it to hand each fetch over.",
    )

    # --- signal thresholds (README: the catalogue) ------------------------------------------
    rage_click_min_clicks: int = Field(3, ge=2, description="Clicks that make a rage click.")
    rage_click_window_ms: int = Field(1000, gt=0, description="Rage-click time window.")
    rage_click_radius_px: float = Field(30.0, gt=0, description="Rage-click distance limit.")
    dead_click_wait_ms: int = Field(
        2500, gt=0, description="A click nothing answers within this long is dead."
    )
    dead_click_min_clicks: int = Field(2, ge=1, description="Dead clicks that make the signal.")
    dead_click_window_ms: int = Field(
        60_000, gt=0, description="Window in which the dead clicks must fall."
    )
    payment_failed_attempts: int = Field(
        2, ge=1, description="Failed payment attempts that make a payment failure."
    )
    step_loop_min_regressions: int = Field(
        2,
        ge=1,
        description="Returns to an earlier checkout step, cart unchanged, that make a loop.",
    )
    form_field_min_focus: int = Field(
        3, ge=2, description="Focuses of one field that make a struggle."
    )
    form_min_errors: int = Field(2, ge=1, description="Errors on one form that make a struggle.")
    form_slow_ms: int = Field(180_000, gt=0, description="Time on one form that makes a struggle.")
    checkout_stall_ms: int = Field(
        60_000, gt=0, description="Silence at payment or review, with a cart, that is a stall."
    )
    product_min_views: int = Field(3, ge=2, description="Views of one product that are hesitation.")
    product_dwell_ms: int = Field(
        120_000, gt=0, description="Time on one product page that is hesitation."
    )
    product_idle_ms: int = Field(
        60_000, gt=0, description="A gap on a product page that stops its dwell (a background tab)."
    )
    search_min_zero_results: int = Field(
        2, ge=1, description="Searches with no results that make search frustration."
    )
    search_min_reformulations: int = Field(
        3, ge=1, description="Changed queries within the search window that make frustration."
    )
    search_window_ms: int = Field(60_000, gt=0, description="Search reformulation window.")
    error_burst_min_errors: int = Field(3, ge=2, description="Errors that make an error burst.")
    error_burst_window_ms: int = Field(30_000, gt=0, description="Error-burst window.")
    cart_idle_ms: int = Field(
        600_000, gt=0, description="Silence with an unbought cart that is an abandonment risk."
    )
    rhythm_min_visits: int = Field(
        3, ge=1, description="Earlier visits needed before a rhythm change is judged."
    )
    rhythm_gap_factor: float = Field(
        1.5, gt=1, description="Gap since the last visit, over the usual gap, that is slowing."
    )
    rhythm_visit_share: float = Field(
        0.6, gt=0, lt=1, description="Last visit's events, over the usual, that is shrinking."
    )
    rhythm_pace_factor: float = Field(
        2.0,
        gt=1,
        description="Last visit's mean gap between events, over the usual, that is slowing.",
    )
    bot_min_events: int = Field(20, ge=2, description="Events before a session can look automated.")
    bot_min_events_again: int = Field(
        5, ge=2, description="The same, for a customer with an automated visit before."
    )
    bot_gap_ms: int = Field(150, gt=0, description="Gaps shorter than this are no think time.")
    bot_fast_share: float = Field(
        0.5,
        gt=0,
        le=1,
        description="Share of gaps that are such a gap after another one, that makes a "
        "session look automated.",
    )
    repeat_click_selectors: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_REPEAT_CLICK_SELECTORS),
        description="Comma-separated selector substrings of elements clicked repeatedly by "
        "design (never rage clicks).",
    )
    no_response_selectors: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_NO_RESPONSE_SELECTORS),
        description="Comma-separated selector substrings of elements that answer with no page "
        "event by design (never dead clicks).",
    )

    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator(
        "api_keys",
        "ingest_keys",
        "trusted_proxies",
        "cors_origins",
        "repeat_click_selectors",
        "no_response_selectors",
        "shadow_reasons",
        "webhook_urls",
        mode="before",
    )
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
        if self.cap_per_day > StateLimits().interventions_max:
            # The daily cap counts the decisions a customer's state remembers.
            raise ValueError(f"cap_per_day must be at most {StateLimits().interventions_max}")
        unknown = set(self.shadow_reasons) - {reason for _kind, reason in CATALOGUE}
        if unknown:
            raise ValueError(f"shadow_reasons: unknown reason(s) {sorted(unknown)}")
        return self

    @model_validator(mode="after")
    def _check_access(self) -> Settings:
        secret = {key.get_secret_value() for key in self.api_keys}
        if (self.ingest_keys or self.stream_token_secret.get_secret_value()) and not secret:
            raise ValueError(
                "ingest_keys and stream_token_secret need api_keys: without them nothing "
                "requires a key"
            )
        if secret & {key.get_secret_value() for key in self.ingest_keys}:
            raise ValueError("a key cannot be both in api_keys and in ingest_keys")
        for name in ("stream_token_secret", "customer_id_salt"):
            value = getattr(self, name).get_secret_value()
            if value and len(value) < _MIN_SECRET_CHARS:
                raise ValueError(f"{name} must be at least {_MIN_SECRET_CHARS} characters")
        TrustedProxies(self.trusted_proxies)  # raises on an entry that is not an address
        return self

    @property
    def signal_thresholds(self) -> SignalThresholds:
        """The detector thresholds, as the pure detectors take them."""
        names = set(SignalThresholds.__dataclass_fields__) - {"click_rules"}
        return SignalThresholds(
            **{name: getattr(self, name) for name in names},
            click_rules=ClickRules(
                repeat_click_selectors=tuple(s.lower() for s in self.repeat_click_selectors),
                no_response_selectors=tuple(s.lower() for s in self.no_response_selectors),
            ),
        )

    @property
    def rules(self) -> Rules:
        """Everything the pure pipeline is configured with."""
        return Rules(
            thresholds=self.signal_thresholds,
            limits=StateLimits(
                recent_events_max=self.recent_events_max,
                seen_event_ids_max=self.seen_event_ids_max,
                live_sessions_max=self.live_sessions_max,
            ),
            time=TimeRules(
                allowed_lateness_ms=self.allowed_lateness_ms,
                session_timeout_ms=self.session_timeout_s * 1000,
                customer_ttl_ms=int(self.customer_ttl_days * 86_400_000),
            ),
            policy=PolicyRules(
                reason_cooldown_ms=self.cooldown_reason_s * 1000,
                any_cooldown_ms=self.cooldown_any_s * 1000,
                session_cap=self.cap_per_session,
                daily_cap=self.cap_per_day,
                quiet_after_purchase_ms=self.quiet_after_purchase_s * 1000,
                shadow_reasons=frozenset(self.shadow_reasons),
                holdout_share=self.holdout_share,
                conversion_window_ms=int(self.conversion_window_h * 3_600_000),
            ),
        )
