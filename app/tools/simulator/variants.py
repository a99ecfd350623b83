"""Parameter profiles of the simulator: ``tuning``, and ``holdout``, which is never tuned on.

A ``Variant`` bundles how people behave (``Behaviour``: think times, slips, how
often each look-alike of a friction shows up in a clean session, crawlers), what
the network and devices do to their events on the way (``Faults``) and the story
mix. Detectors and thresholds may be tuned on ``tuning`` runs. ``holdout`` has
other think-time medians and spreads, other look-alike and slip probabilities
(two look-alikes only it has), other fault rates and clock skews and another
story mix: it measures whether a change generalises, and must never be used to
choose one. Do not tune on it, and do not change it to make a number pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from math import isfinite

from app.errors import ConfigError

__all__ = ["HOLDOUT", "LOOKALIKES", "TUNING", "VARIANTS", "Behaviour", "Faults", "Variant"]

#: Things clean shoppers do that look like friction to a naive rule; see ``lookalikes``.
LOOKALIKES: tuple[str, ...] = (
    "cart_edit",  # back to the cart from shipping, add or remove, continue
    "back_one_step",  # payment -> shipping -> payment, once
    "qty_stepper",  # 3-5 fast clicks on the quantity "+"
    "carousel",  # a few clicks on a carousel arrow
    "pagination",  # next page of a listing, once or more
    "text_selection",  # a triple click selecting a paragraph
    "no_response_button",  # print, download, copy link, share: nothing happens on the page
    "slow_load",  # one page takes 1.5-3 s to load
    "refresh_step",  # reloading a checkout step sends the same step again
    "fast_continue",  # saved details: Continue, Continue, Pay within seconds
    "long_quiet",  # minutes away from a listing, with an empty cart
    "filter_toggle",  # grid/list toggle clicked back and forth
    "double_submit",  # a double click on "place order"
)


def _check(name: str, ok: bool, wanted: str, got: object) -> None:
    if not ok:
        raise ConfigError(f"{name}: must be {wanted}, got {got!r}")


def _check_share(name: str, value: float) -> None:
    ok = type(value) in (int, float) and isfinite(value) and 0 <= value <= 1
    _check(name, ok, "a share from 0 to 1", value)


@dataclass(slots=True, frozen=True)
class Behaviour:
    """How simulated visitors act: median think times (ms), slips, look-alikes, crawlers.

    Think times are lognormal around their medians with log-spread ``think_sigma``.
    ``slip_p`` is the chance of one harmless slip in a clean session (a double
    click, one back, one unanswered click, one script error); ``lookalike_p`` the
    chance, per clean session where it can happen, of each of ``LOOKALIKES``.
    Crawlers wait ``bot_gap_ms`` (median) between requests, and
    ``bot_user_agent_share`` of them say what they are in ``props.user_agent``.
    """

    load_ms: float
    glance_ms: float
    read_ms: float
    field_ms: float
    step_ms: float
    leave_ms: float
    think_sigma: float
    slip_p: float
    lookalike_p: Mapping[str, float]
    bot_gap_ms: float
    bot_user_agent_share: float

    def __post_init__(self) -> None:
        for name in ("load_ms", "glance_ms", "read_ms", "field_ms", "step_ms", "leave_ms",
                     "bot_gap_ms"):  # fmt: skip
            _check(name, getattr(self, name) > 0, "a positive number", getattr(self, name))
        _check("think_sigma", 0 <= self.think_sigma <= 2, "from 0 to 2", self.think_sigma)
        for name in ("slip_p", "bot_user_agent_share"):
            _check_share(name, getattr(self, name))
        if set(self.lookalike_p) != set(LOOKALIKES):
            raise ConfigError(f"lookalike_p: needs exactly {', '.join(LOOKALIKES)}")
        for name, p in self.lookalike_p.items():
            _check_share(f"lookalike_p[{name}]", p)


@dataclass(slots=True, frozen=True)
class Faults:
    """What the network and the devices do to events before the collector sees them.

    The defaults are a perfect network: events arrive in order, once, and every
    session reports its end.

    Parameters
    ----------
    network_delay_ms, network_delay_sigma
        Median and log-spread of the lognormal delay of an ordinary event.
    out_of_order_share, out_of_order_ms
        Share of events held back by ``out_of_order_ms`` (uniform; keep it under
        the 5 s allowed lateness), so they arrive after later ones.
    very_late_share, very_late_ms
        Share of events held back far beyond the allowed lateness.
    retry_share, retry_ms
        Share of events sent twice: the same event, same ``event_id``, again this
        much after the first copy.
    session_end_share
        Share of sessions whose browser reports the tab closing (``session_end``).
    two_device_share
        Share of customers who take turns between two tabs or devices, each its
        own session, the second device's clock off by ``clock_skew_ms`` (uniform).

    Examples
    --------
    >>> Faults().retry_share, Faults(retry_share=0.02).retry_ms
    (0.0, (200, 5000))
    >>> Faults(retry_share=1.5)
    Traceback (most recent call last):
    ...
    app.errors.ConfigError: retry_share: must be a share from 0 to 1, got 1.5
    """

    network_delay_ms: float = 0.0
    network_delay_sigma: float = 0.0
    out_of_order_share: float = 0.0
    out_of_order_ms: tuple[int, int] = (500, 4_000)
    very_late_share: float = 0.0
    very_late_ms: tuple[int, int] = (10_000, 120_000)
    retry_share: float = 0.0
    retry_ms: tuple[int, int] = (200, 5_000)
    session_end_share: float = 1.0
    two_device_share: float = 0.0
    clock_skew_ms: tuple[int, int] = (-90_000, 30_000)

    def __post_init__(self) -> None:
        _check("network_delay_ms", self.network_delay_ms >= 0, "a number >= 0",
               self.network_delay_ms)  # fmt: skip
        _check("network_delay_sigma", 0 <= self.network_delay_sigma <= 2, "from 0 to 2",
               self.network_delay_sigma)  # fmt: skip
        for name in ("out_of_order_share", "very_late_share", "retry_share",
                     "session_end_share", "two_device_share"):  # fmt: skip
            _check_share(name, getattr(self, name))
        _check("out_of_order_share + very_late_share",
               self.out_of_order_share + self.very_late_share <= 1, "at most 1",
               self.out_of_order_share + self.very_late_share)  # fmt: skip
        for name in ("out_of_order_ms", "very_late_ms", "retry_ms"):
            low, high = getattr(self, name)
            _check(name, 0 <= low <= high, "(low, high) with 0 <= low <= high", (low, high))
        low, high = self.clock_skew_ms
        _check("clock_skew_ms", low <= high, "(low, high) with low <= high", (low, high))


@dataclass(slots=True, frozen=True)
class Variant:
    """A named parameter profile: behaviour, faults and story mix."""

    name: str
    behaviour: Behaviour
    faults: Faults
    #: Weight per story; ``churn_risk`` and ``bot`` weigh customers, the others sessions.
    mix: Mapping[str, float]


TUNING = Variant(
    name="tuning",
    behaviour=Behaviour(
        load_ms=450, glance_ms=6_000, read_ms=18_000, field_ms=3_500, step_ms=1_200,
        leave_ms=20_000, think_sigma=0.6, slip_p=0.2,
        lookalike_p={
            "cart_edit": 0.15, "back_one_step": 0.12, "qty_stepper": 0.15, "carousel": 0.2,
            "pagination": 0.2, "text_selection": 0.1, "no_response_button": 0.15,
            "slow_load": 0.1, "refresh_step": 0.08, "fast_continue": 0.5, "long_quiet": 0.1,
            "filter_toggle": 0.0, "double_submit": 0.0,
        },
        bot_gap_ms=60, bot_user_agent_share=0.5,
    ),
    faults=Faults(
        network_delay_ms=80, network_delay_sigma=0.5,
        out_of_order_share=0.03, out_of_order_ms=(500, 4_000),
        very_late_share=0.005, very_late_ms=(10_000, 120_000),
        retry_share=0.015, retry_ms=(200, 5_000),
        session_end_share=0.5, two_device_share=0.05, clock_skew_ms=(-90_000, 30_000),
    ),
    mix={
        "clean_buyer": 0.22, "browser_leaves": 0.31, "price_hesitant": 0.05,
        "rage_clicker": 0.04, "dead_clicks": 0.04, "form_struggler": 0.04,
        "payment_failure": 0.03, "checkout_staller": 0.04, "search_frustrated": 0.04,
        "step_looper": 0.03, "error_burst": 0.03, "cart_abandoner": 0.04, "micro_action": 0.03,
        "churn_risk": 0.04, "bot": 0.02,
    },
)  # fmt: skip

HOLDOUT = Variant(
    name="holdout",
    behaviour=Behaviour(
        load_ms=650, glance_ms=7_500, read_ms=22_000, field_ms=4_500, step_ms=1_500,
        leave_ms=30_000, think_sigma=0.7, slip_p=0.3,
        lookalike_p={
            "cart_edit": 0.25, "back_one_step": 0.2, "qty_stepper": 0.2, "carousel": 0.3,
            "pagination": 0.25, "text_selection": 0.15, "no_response_button": 0.25,
            "slow_load": 0.2, "refresh_step": 0.12, "fast_continue": 0.6, "long_quiet": 0.15,
            "filter_toggle": 0.15, "double_submit": 0.1,
        },
        bot_gap_ms=90, bot_user_agent_share=0.3,
    ),
    faults=Faults(
        network_delay_ms=140, network_delay_sigma=0.8,
        out_of_order_share=0.05, out_of_order_ms=(500, 4_500),
        very_late_share=0.01, very_late_ms=(15_000, 180_000),
        retry_share=0.02, retry_ms=(300, 8_000),
        session_end_share=0.4, two_device_share=0.1, clock_skew_ms=(-150_000, 60_000),
    ),
    mix={
        "clean_buyer": 0.26, "browser_leaves": 0.28, "price_hesitant": 0.04,
        "rage_clicker": 0.03, "dead_clicks": 0.04, "form_struggler": 0.03,
        "payment_failure": 0.03, "checkout_staller": 0.03, "search_frustrated": 0.04,
        "step_looper": 0.03, "error_burst": 0.02, "cart_abandoner": 0.04, "micro_action": 0.03,
        "churn_risk": 0.04, "bot": 0.06,
    },
)  # fmt: skip

#: Every variant by name; ``tuning`` is the default.
VARIANTS: dict[str, Variant] = {v.name: v for v in (TUNING, HOLDOUT)}
