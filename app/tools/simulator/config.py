"""What to simulate: ``SimulationConfig``, checked when it is built, and the default story mix."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from math import isfinite

from app.errors import ConfigError
from app.tools.simulator.stories import STORIES

__all__ = ["DEFAULT_MIX", "DEFAULT_START_MS", "SimulationConfig", "parse_mix"]

#: 2026-01-01T00:00:00Z.
DEFAULT_START_MS = 1_767_225_600_000

#: Share of sessions per story (``churn_risk``: share of customers), mostly friction-free.
DEFAULT_MIX: Mapping[str, float] = {
    "clean_buyer": 0.25,
    "browser_leaves": 0.35,
    "price_hesitant": 0.06,
    "rage_clicker": 0.04,
    "dead_clicks": 0.04,
    "form_struggler": 0.04,
    "payment_failure": 0.03,
    "checkout_staller": 0.04,
    "search_frustrated": 0.05,
    "step_looper": 0.03,
    "churn_risk": 0.04,
    "error_burst": 0.03,
}

# Seeds numpy takes and event ids can hold (64 characters at most).
_MAX_SEED = 2**63 - 1


def _default_mix() -> dict[str, float]:
    return dict(DEFAULT_MIX)


@dataclass(frozen=True)
class SimulationConfig:
    """One simulation run; every argument is checked when the config is built.

    Parameters
    ----------
    customers
        How many customers visit the shop.
    days
        Sessions are spread over this many days from ``start_ms``.
    sessions_per_customer
        Mean number of sessions per customer (1 + Poisson); at least 1.
    seed
        Seed of the run's only random generator: the same config gives the same events.
    mix
        Relative weight per story name (``STORIES``); stories left out get none. A
        weight is a share of sessions, except ``churn_risk``'s: a share of customers,
        since churn is a whole customer's history. Stored in ``STORIES`` order.
    start_ms
        Event time of the simulation's start, in ms since the epoch.

    Examples
    --------
    >>> SimulationConfig(customers=10, mix={"rage_clicker": 1, "clean_buyer": 3}).mix
    {'clean_buyer': 3.0, 'rage_clicker': 1.0}
    >>> SimulationConfig(days=0)
    Traceback (most recent call last):
    ...
    app.errors.ConfigError: days: must be a positive number, got 0
    """

    customers: int = 1000
    days: float = 7.0
    sessions_per_customer: float = 3.0
    seed: int = 0
    mix: Mapping[str, float] = field(default_factory=_default_mix)
    start_ms: int = DEFAULT_START_MS

    def __post_init__(self) -> None:
        if type(self.customers) is not int or self.customers < 1:
            raise ConfigError(f"customers: must be a whole number >= 1, got {self.customers!r}")
        if not _is_number(self.days) or self.days <= 0:
            raise ConfigError(f"days: must be a positive number, got {self.days!r}")
        if not _is_number(self.sessions_per_customer) or self.sessions_per_customer < 1:
            raise ConfigError(
                f"sessions_per_customer: must be a number >= 1, got {self.sessions_per_customer!r}"
            )
        if type(self.seed) is not int or not 0 <= self.seed <= _MAX_SEED:
            raise ConfigError(f"seed: must be a whole number from 0 to 2**63-1, got {self.seed!r}")
        if type(self.start_ms) is not int or self.start_ms < 0:
            raise ConfigError(f"start_ms: must be whole ms since the epoch, got {self.start_ms!r}")
        object.__setattr__(self, "mix", _checked_mix(self.mix))


def _is_number(value: object) -> bool:
    return type(value) in (int, float) and isfinite(value)  # type: ignore[arg-type]


def _checked_mix(mix: Mapping[str, float]) -> dict[str, float]:
    unknown = sorted(set(mix) - set(STORIES))
    if unknown:
        raise ConfigError(f"mix: unknown stories {unknown}; known: {', '.join(STORIES)}")
    for name, weight in mix.items():
        if not _is_number(weight) or weight < 0:
            raise ConfigError(f"mix: weight of {name} must be a number >= 0, got {weight!r}")
    if sum(mix.values()) <= 0:
        raise ConfigError("mix: at least one story needs a positive weight")
    return {name: float(mix[name]) for name in STORIES if name in mix}


def parse_mix(text: str) -> dict[str, float]:
    """Read a mix written as ``story=weight,story=weight``.

    Examples
    --------
    >>> parse_mix("clean_buyer=5, rage_clicker=1.5")
    {'clean_buyer': 5.0, 'rage_clicker': 1.5}
    >>> parse_mix("clean_buyer")
    Traceback (most recent call last):
    ...
    app.errors.ConfigError: mix: expected story=weight, got 'clean_buyer'
    """
    mix: dict[str, float] = {}
    for part in text.split(","):
        name, sep, weight = part.partition("=")
        try:
            if not sep:
                raise ValueError
            mix[name.strip()] = float(weight)
        except ValueError:
            raise ConfigError(f"mix: expected story=weight, got {part.strip()!r}") from None
    return mix
