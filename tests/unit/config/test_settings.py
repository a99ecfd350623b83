"""``Settings``: defaults, ``NUDGEFLOW_*`` parsing, and bad config failing at construction."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from app.detect.signals import SignalThresholds
from config.settings import Settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``NUDGEFLOW_*`` variable of the machine running the tests leaks in."""
    for name in os.environ:
        if name.upper().startswith("NUDGEFLOW_"):
            monkeypatch.delenv(name)


def test_defaults_follow_the_contract() -> None:
    settings = Settings()

    assert settings.broker == "kafka://localhost:9092"
    assert settings.redis_url.get_secret_value() == "redis://localhost:6379/0"
    assert settings.web_port == 6066
    assert settings.app_id == "nudgeflow"
    assert settings.broker_flavour == "kafka"
    assert settings.api_keys == []
    assert settings.cors_origins == []
    assert settings.log_level == "info"
    assert (settings.recent_events_max, settings.seen_event_ids_max) == (32, 32)


def test_default_thresholds_are_the_detector_defaults() -> None:
    assert Settings().signal_thresholds == SignalThresholds()


@pytest.mark.parametrize(
    ("env", "name", "value"),
    [
        ({"NUDGEFLOW_BROKER": "kafka://k1:9092;k2:9092"}, "broker", "kafka://k1:9092;k2:9092"),
        ({"NUDGEFLOW_WEB_PORT": "8080"}, "web_port", 8080),
        ({"NUDGEFLOW_TOPIC_PARTITIONS": "4"}, "topic_partitions", 4),
        ({"NUDGEFLOW_BROKER_FLAVOUR": "tansu"}, "broker_flavour", "tansu"),
        ({"NUDGEFLOW_LOG_LEVEL": "debug"}, "log_level", "debug"),
        ({"NUDGEFLOW_RAGE_CLICK_RADIUS_PX": "12.5"}, "rage_click_radius_px", 12.5),
        ({"nudgeflow_web_port": "7000"}, "web_port", 7000),
        (
            {"NUDGEFLOW_CORS_ORIGINS": "https://shop.example"},
            "cors_origins",
            ["https://shop.example"],
        ),
        (
            {"NUDGEFLOW_CORS_ORIGINS": " https://a.example , https://b.example,, "},
            "cors_origins",
            ["https://a.example", "https://b.example"],
        ),
        ({"NUDGEFLOW_CORS_ORIGINS": ""}, "cors_origins", []),
        ({"NUDGEFLOW_API_KEYS": ""}, "api_keys", []),
        ({"NUDGEFLOW_API_KEYS": " , "}, "api_keys", []),
        ({"WEB_PORT": "1234"}, "web_port", 6066),
    ],
)
def test_env_parsing(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], name: str, value: Any
) -> None:
    for key, text in env.items():
        monkeypatch.setenv(key, text)

    assert getattr(Settings(), name) == value


@pytest.mark.parametrize(
    ("text", "keys"),
    [
        ("a, b", ["a", "b"]),
        ("only", ["only"]),
        ("k1,k2,k3", ["k1", "k2", "k3"]),
        (" spaced ,", ["spaced"]),
    ],
)
def test_api_keys_are_comma_separated_secrets(
    monkeypatch: pytest.MonkeyPatch, text: str, keys: list[str]
) -> None:
    monkeypatch.setenv("NUDGEFLOW_API_KEYS", text)

    api_keys = Settings().api_keys

    assert all(isinstance(k, SecretStr) for k in api_keys)
    assert [k.get_secret_value() for k in api_keys] == keys


def test_secrets_do_not_show(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUDGEFLOW_API_KEYS", "topsecret-key")
    monkeypatch.setenv("NUDGEFLOW_REDIS_URL", "redis://:hunter2@redis:6379/0")

    settings = Settings()

    assert isinstance(settings.redis_url, SecretStr)
    for shown in (repr(settings), str(settings), settings.model_dump_json()):
        assert "topsecret-key" not in shown
        assert "hunter2" not in shown


def test_constructor_arguments_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUDGEFLOW_WEB_PORT", "8080")

    assert Settings(web_port=9000).web_port == 9000


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ({"NUDGEFLOW_WEB_PORT": "0"}, "web_port"),
        ({"NUDGEFLOW_WEB_PORT": "65536"}, "web_port"),
        ({"NUDGEFLOW_WEB_PORT": "http"}, "web_port"),
        ({"NUDGEFLOW_TOPIC_PARTITIONS": "0"}, "topic_partitions"),
        ({"NUDGEFLOW_TOPIC_REPLICATION_FACTOR": "0"}, "topic_replication_factor"),
        ({"NUDGEFLOW_TABLE_STANDBY_REPLICAS": "-1"}, "table_standby_replicas"),
        ({"NUDGEFLOW_STREAM_BUFFER_MAXSIZE": "0"}, "stream_buffer_maxsize"),
        ({"NUDGEFLOW_BROKER_FLAVOUR": "redpanda"}, "broker_flavour"),
        ({"NUDGEFLOW_LOG_LEVEL": "trace"}, "log_level"),
        ({"NUDGEFLOW_BROKER_SESSION_TIMEOUT_S": "0"}, "broker_session_timeout_s"),
        ({"NUDGEFLOW_BROKER_COMMIT_INTERVAL_S": "-1"}, "broker_commit_interval_s"),
        ({"NUDGEFLOW_BROKER_COMMIT_INTERVAL_BEHIND_S": "0"}, "broker_commit_interval_behind_s"),
        ({"NUDGEFLOW_FETCH_MAX_WAIT_MS": "5001"}, "fetch_max_wait_ms"),
        ({"NUDGEFLOW_FETCH_MAX_WAIT_MS": "-1"}, "fetch_max_wait_ms"),
        ({"NUDGEFLOW_REDIS_STREAM_MAXLEN": "0"}, "redis_stream_maxlen"),
        ({"NUDGEFLOW_RECENT_EVENTS_MAX": "7"}, "recent_events_max"),
        ({"NUDGEFLOW_RECENT_EVENTS_MAX": "1025"}, "recent_events_max"),
        ({"NUDGEFLOW_SEEN_EVENT_IDS_MAX": "15"}, "seen_event_ids_max"),
        ({"NUDGEFLOW_SEEN_EVENT_IDS_MAX": "8193"}, "seen_event_ids_max"),
        ({"NUDGEFLOW_RAGE_CLICK_MIN_CLICKS": "1"}, "rage_click_min_clicks"),
        ({"NUDGEFLOW_RAGE_CLICK_WINDOW_MS": "0"}, "rage_click_window_ms"),
        ({"NUDGEFLOW_RAGE_CLICK_RADIUS_PX": "0"}, "rage_click_radius_px"),
        ({"NUDGEFLOW_PAYMENT_FAILED_ATTEMPTS": "0"}, "payment_failed_attempts"),
        ({"NUDGEFLOW_STEP_LOOP_MIN_REGRESSIONS": "0"}, "step_loop_min_regressions"),
        ({"NUDGEFLOW_SESSION_TIMEOUT_S": "10"}, "session_timeout_s"),
        ({"NUDGEFLOW_RHYTHM_VISIT_SHARE": "1.5"}, "rhythm_visit_share"),
        ({"NUDGEFLOW_CUSTOMER_TTL_DAYS": "0"}, "customer_ttl_days"),
    ],
)
def test_invalid_values_fail_at_construction(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], field: str
) -> None:
    for key, text in env.items():
        monkeypatch.setenv(key, text)

    with pytest.raises(ValidationError, match=field):
        Settings()


@pytest.mark.parametrize(
    ("heartbeat_s", "session_timeout_s", "valid"),
    [
        (1.0, 10.0, True),
        (1.0, 3.0, True),
        (10 / 3, 10.0, True),
        (3.0, 9.0, True),
        (1.01, 3.0, False),
        (4.0, 10.0, False),
        (10.0, 10.0, False),
        (20.0, 10.0, False),
    ],
)
def test_heartbeat_must_be_at_most_a_third_of_the_session_timeout(
    heartbeat_s: float, session_timeout_s: float, valid: bool
) -> None:
    kwargs = {
        "broker_heartbeat_interval_s": heartbeat_s,
        "broker_session_timeout_s": session_timeout_s,
    }
    if valid:
        Settings(**kwargs)
    else:
        with pytest.raises(ValidationError, match="a third of broker_session_timeout_s"):
            Settings(**kwargs)


def test_heartbeat_rule_also_applies_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUDGEFLOW_BROKER_HEARTBEAT_INTERVAL_S", "5")

    with pytest.raises(ValidationError, match="a third"):
        Settings()


def test_settings_are_frozen() -> None:
    settings = Settings()

    with pytest.raises(ValidationError):
        settings.web_port = 1  # type: ignore[misc]


THRESHOLD_FIELDS = [f.name for f in dataclasses.fields(SignalThresholds) if f.name != "click_rules"]


def test_every_threshold_is_a_setting() -> None:
    assert set(THRESHOLD_FIELDS) <= set(Settings.model_fields)


def _another_value(name: str) -> float:
    default = getattr(SignalThresholds(), name)
    if isinstance(default, int):
        return default + 1
    return default / 2 if name.endswith("share") else default + 0.5


@pytest.mark.parametrize("name", THRESHOLD_FIELDS)
def test_signal_thresholds_mirror_the_settings(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    value = _another_value(name)
    monkeypatch.setenv(f"NUDGEFLOW_{name.upper()}", str(value))

    thresholds = Settings().signal_thresholds

    assert getattr(thresholds, name) == value
    assert dataclasses.replace(SignalThresholds(), **{name: value}) == thresholds


def test_click_rules_come_from_the_selector_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUDGEFLOW_REPEAT_CLICK_SELECTORS", "Spinner, .stars")
    monkeypatch.setenv("NUDGEFLOW_NO_RESPONSE_SELECTORS", "")

    rules = Settings().signal_thresholds.click_rules

    assert rules.repeat_click_selectors == ("spinner", ".stars")
    assert rules.no_response_selectors == ()


def test_time_rules_and_limits_come_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUDGEFLOW_ALLOWED_LATENESS_MS", "2000")
    monkeypatch.setenv("NUDGEFLOW_SESSION_TIMEOUT_S", "600")
    monkeypatch.setenv("NUDGEFLOW_CUSTOMER_TTL_DAYS", "1.5")
    monkeypatch.setenv("NUDGEFLOW_LIVE_SESSIONS_MAX", "2")

    rules = Settings().rules

    assert (rules.time.allowed_lateness_ms, rules.time.session_timeout_ms) == (2000, 600_000)
    assert rules.time.customer_ttl_ms == 129_600_000
    assert rules.limits.live_sessions_max == 2
