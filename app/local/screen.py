"""What ``nudgeflow up`` and ``demo`` print: the banner, the ready line, one line per nudge.

Pure text: the caller writes it. Customer ids and explanations come from the web,
so control characters are replaced before they reach a terminal.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Banner", "intervention_line", "printable", "ready_line"]

# A line per intervention fits 120 columns: time 8, kind 8 (`reminder`), reason 21
# (`cart_abandonment_risk`), customer 20, the explanation the rest, with separators.
_KIND_MAX = 8
_REASON_MAX = 21
_CUSTOMER_MAX = 20
_EXPLANATION_MAX = 120 - (8 + 2 + _KIND_MAX + 1 + _REASON_MAX + 1 + _CUSTOMER_MAX + 1)


@dataclass(slots=True, frozen=True)
class Banner:
    """Where the stack listens, and where its log goes."""

    web_url: str
    broker_url: str
    redis_url: str
    log_path: str | None
    demo: bool = False
    holdout_share: float = 0.0

    def render(self) -> str:
        """The banner, printed once the broker and Redis run.

        Examples
        --------
        >>> print(Banner("http://127.0.0.1:6066", "kafka://127.0.0.1:9092",
        ...              "redis://127.0.0.1:6379/0", ".nudgeflow/worker.log").render())
        nudgeflow up
          collector  http://127.0.0.1:6066/v1/events
          broker     kafka://127.0.0.1:9092
          redis      redis://127.0.0.1:6379/0
          log        .nudgeflow/worker.log (--verbose shows it here)
          stop with Ctrl-C
        >>> print(Banner("http://127.0.0.1:8000", "kafka://127.0.0.1:9092",
        ...              "redis://127.0.0.1:6379/0", None, demo=True).render())
        nudgeflow demo
          shop       http://127.0.0.1:8000/demo/
          collector  http://127.0.0.1:8000/v1/events
          broker     kafka://127.0.0.1:9092
          redis      redis://127.0.0.1:6379/0
          holdout    none: every shopper the policy picks is nudged
          log        here (--verbose)
          stop with Ctrl-C
        """
        lines = [f"nudgeflow {'demo' if self.demo else 'up'}"]
        if self.demo:
            lines.append(f"  shop       {self.web_url}/demo/")
        lines += [
            f"  collector  {self.web_url}/v1/events",
            f"  broker     {self.broker_url}",
            f"  redis      {self.redis_url}",
        ]
        if self.demo:
            held = (
                "none: every shopper the policy picks is nudged"
                if self.holdout_share == 0
                else f"{self.holdout_share:.0%} of shoppers see no nudge (NUDGEFLOW_HOLDOUT_SHARE)"
            )
            lines.append(f"  holdout    {held}")
        log = (
            "here (--verbose)"
            if self.log_path is None
            else f"{self.log_path} (--verbose shows it here)"
        )
        lines += [f"  log        {log}", "  stop with Ctrl-C"]
        return "\n".join(lines)


def ready_line(elapsed_s: float, web_url: str, demo: bool) -> str:
    """The line printed once the worker has its partitions and state.

    Examples
    --------
    >>> ready_line(3.14, "http://127.0.0.1:6066", demo=False)
    'ready in 3.1 s: partitions assigned, state recovered; interventions show below'
    >>> ready_line(4, "http://127.0.0.1:6066", demo=True)
    'ready in 4.0 s: open http://127.0.0.1:6066/demo/ in a browser; interventions show below'
    """
    what = f"open {web_url}/demo/ in a browser" if demo else "partitions assigned, state recovered"
    return f"ready in {elapsed_s:.1f} s: {what}; interventions show below"


def intervention_line(intervention: Mapping[str, Any], tz: dt.tzinfo | None = None) -> str:
    """One compact line: time emitted, kind, reason, customer, short explanation.

    Examples
    --------
    >>> nudge = {"kind": "assist", "reason": "rage_click", "customer_id": "c42",
    ...          "emitted_ts": 1_767_225_600_000, "explanation": "The customer clicked "
    ...          "#pay 3 times within 1 s, which usually means it is not responding as expected."}
    >>> intervention_line(nudge, dt.UTC)
    '00:00:00  assist   rage_click            c42          The customer clicked #pay 3 times within 1 s, which usual…'
    >>> intervention_line({"customer_id": "\\x1b[2Jx", "kind": "offer"}, dt.UTC)
    '--:--:--  offer    ?                     ?[2Jx'
    """  # noqa: E501
    emitted = intervention.get("emitted_ts")
    when = (
        dt.datetime.fromtimestamp(emitted / 1000, tz).strftime("%H:%M:%S")
        if isinstance(emitted, int | float) and not isinstance(emitted, bool)
        else "--:--:--"
    )
    kind = printable(intervention.get("kind"), _KIND_MAX)
    reason = printable(intervention.get("reason"), _REASON_MAX)
    customer = printable(intervention.get("customer_id"), _CUSTOMER_MAX)
    explanation = printable(intervention.get("explanation", ""), _EXPLANATION_MAX)
    head = f"{when}  {kind:<{_KIND_MAX}} {reason:<{_REASON_MAX}} {customer:<12}"
    return f"{head} {explanation}".rstrip()


def printable(value: object, limit: int) -> str:
    """``value`` as text of at most ``limit`` characters, control characters as ``?``.

    Examples
    --------
    >>> printable("checkout\\n\\x07step", 40), printable("a" * 10, 5), printable(None, 5)
    ('checkout??step', 'aaaa…', '?')
    """
    text = "?" if value is None else str(value)
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"
