"""What to simulate: ``SimulationConfig``, checked when it is built, and the default story mix."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from math import isfinite

from app.errors import ConfigError
from app.tools.simulator.stories import STORIES
from app.tools.simulator.variants import TUNING, VARIANTS, Faults

__all__ = ["DEFAULT_MIX", "DEFAULT_START_MS", "SimulationConfig", "parse_mix"]

#: 2026-01-01T00:00:00Z.
DEFAULT_START_MS = 1_767_225_600_000

#: The ``tuning`` variant's weight per story (``churn_risk``, ``bot``: of customers), mostly clean.
DEFAULT_MIX: Mapping[str, float] = TUNING.mix

# Seeds numpy takes and event ids can hold (64 characters at most).
_MAX_SEED = 2**63 - 1
_ID_PREFIX = re.compile(r"[A-Za-z0-9._-]{0,24}")


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
    variant
        The parameter profile (``variants.VARIANTS``): ``"tuning"``, or ``"holdout"``,
        which is never tuned on. It sets behaviour, and the mix and faults unless given.
    mix
        Relative weight per story name (``STORIES``); stories left out get none. A
        weight is a share of sessions, except those of ``CUSTOMER_STORIES``
        (``churn_risk``, ``bot``): shares of customers, since those are a whole
        customer's history. Stored in ``STORIES`` order. None: the variant's.
    start_ms
        Event time of the simulation's start, in ms since the epoch.
    faults
        What happens to events on their way (delays, retries, lost ``session_end``,
        second devices). None: the variant's; ``Faults()`` is a perfect network.
    id_prefix
        Put in front of every customer, session and event id, so that runs do not
        share ids (letters, digits, ``.``, ``_``, ``-``; at most 24).

    Examples
    --------
    >>> SimulationConfig(customers=10, mix={"rage_clicker": 1, "clean_buyer": 3}).mix
    {'clean_buyer': 3.0, 'rage_clicker': 1.0}
    >>> holdout = SimulationConfig(variant="holdout")
    >>> holdout.faults == VARIANTS["holdout"].faults, holdout.mix == VARIANTS["holdout"].mix
    (True, True)
    >>> SimulationConfig(days=0)
    Traceback (most recent call last):
    ...
    app.errors.ConfigError: days: must be a positive number, got 0
    """

    customers: int = 1000
    days: float = 7.0
    sessions_per_customer: float = 3.0
    seed: int = 0
    variant: str = "tuning"
    # None only until __post_init__ puts in the variant's: typed as the result.
    mix: Mapping[str, float] = None  # type: ignore[assignment]
    start_ms: int = DEFAULT_START_MS
    faults: Faults = None  # type: ignore[assignment]
    id_prefix: str = ""

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
        if self.variant not in VARIANTS:
            known = ", ".join(VARIANTS)
            raise ConfigError(f"variant: must be one of {known}, got {self.variant!r}")
        profile = VARIANTS[self.variant]
        object.__setattr__(self, "mix", _checked_mix(profile.mix if self.mix is None else self.mix))
        if self.faults is None:
            object.__setattr__(self, "faults", profile.faults)
        elif not isinstance(self.faults, Faults):
            raise ConfigError(f"faults: must be a Faults, got {self.faults!r}")
        if type(self.id_prefix) is not str or not _ID_PREFIX.fullmatch(self.id_prefix):
            raise ConfigError(
                f"id_prefix: at most 24 letters, digits, '.', '_' or '-', got {self.id_prefix!r}"
            )


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
