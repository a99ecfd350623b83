"""One root error for nudgeflow, with narrow subclasses."""

from __future__ import annotations

__all__ = [
    "BrokerUnavailable",
    "ConfigError",
    "EmbeddedStackError",
    "InvalidEvent",
    "NothingScored",
    "NudgeflowError",
    "PayloadTooLarge",
]


class NudgeflowError(Exception):
    """Root of every error nudgeflow raises on purpose."""


class InvalidEvent(NudgeflowError):
    """A click event, a feedback message or a request body that breaks the wire contract.

    ``reason`` is a short bounded code (a metrics label); ``str(error)`` is the
    message the sender reads, such as ``"ts: missing"``.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class PayloadTooLarge(InvalidEvent):
    """A request body over the collector's size limit."""


class ConfigError(NudgeflowError):
    """Settings that cannot work together."""


class BrokerUnavailable(NudgeflowError):
    """The Kafka broker did not answer in time."""


class EmbeddedStackError(NudgeflowError):
    """An embedded broker or Redis failed to start or stop."""


class NothingScored(NudgeflowError, ValueError):
    """An offline comparison whose tuning set gave the model no session to score."""
