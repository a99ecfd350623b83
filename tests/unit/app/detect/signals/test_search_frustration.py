"""Search frustration: two searches that found nothing, or three rephrasings within a minute,
with no result opened since."""

from __future__ import annotations

import pytest

from app.detect.signals import Signal, SignalThresholds
from app.detect.signals.search_frustration import KIND, REASON, detect_search_frustration
from app.ingest.events import ClickEvent
from tests.factories import T0_MS, click, context

DEFAULT_THRESHOLDS = SignalThresholds()
WINDOW = DEFAULT_THRESHOLDS.search_window_ms


def search(ms: int, query: str, results: int | None = 0) -> ClickEvent:
    return click(type="search", query=query, results=results, ts_ms=T0_MS + ms)


def opened(ms: int, product_id: str = "p1") -> ClickEvent:
    return click(type="product_view", product_id=product_id, ts_ms=T0_MS + ms)


def detect(
    events: list[ClickEvent], thresholds: SignalThresholds = DEFAULT_THRESHOLDS
) -> Signal | None:
    return detect_search_frustration(context(events, thresholds=thresholds))


@pytest.mark.parametrize(
    ("events", "fires"),
    [
        # Searches that find nothing.
        pytest.param([search(0, "gift card")], False, id="one-empty"),
        pytest.param([search(0, "gift card"), search(5000, "giftcard")], True, id="two-empty"),
        pytest.param([search(0, "gift card"), search(600_000, "voucher")], True,
                     id="two-empty-minutes-apart"),
        pytest.param([search(0, "gift card"), opened(3000), search(5000, "giftcard")], False,
                     id="a-result-opened-between"),
        pytest.param([opened(0), search(1000, "gift card"), search(5000, "giftcard")], True,
                     id="a-product-opened-before-searching"),
        pytest.param([search(0, "a", None), search(5000, "b", None)], False,
                     id="results-unknown"),
        pytest.param([search(0, "a", 12), search(5000, "b", 0)], False, id="one-found-things"),
        # Query after query with nothing opened.
        pytest.param([search(0, "a", 9), search(1, "b", 9), search(2, "c", 9)], False,
                     id="two-rephrasings"),
        pytest.param([search(0, "a", 9), search(1, "b", 9), search(2, "c", 9),
                      search(3, "d", 9)], True, id="three-rephrasings"),
        pytest.param([search(0, "a", 9), search(1, "b", 9), search(2, "c", 9),
                      search(WINDOW + 1, "d", 9)], False, id="rephrasings-over-a-minute"),
        pytest.param([search(0, "a", 9), search(1, "b", 9), search(2, "c", 9),
                      search(WINDOW, "d", 9)], True, id="rephrasings-within-a-minute"),
        # The same query again (pagination, a refresh) is not a new query, in any case.
        pytest.param([search(0, "shoes", 9), search(1, "Shoes ", 9), search(2, "SHOES", 9),
                      search(3, "shoes", 9)], False, id="same-query-again"),
        pytest.param([search(0, "a", 9), search(1, "b", 9), opened(2), search(3, "c", 9),
                      search(4, "d", 9)], False, id="rephrasings-around-an-opened-result"),
    ],
)  # fmt: skip
def test_when_it_fires(events: list[ClickEvent], fires: bool) -> None:
    assert (detect(events) is not None) is fires


@pytest.mark.parametrize("last_type", ["page_view", "product_view", "click", "scroll"])
def test_only_a_search_fires(last_type: str) -> None:
    events = [search(0, "a"), search(1, "b"), click(type=last_type, ts_ms=T0_MS + 2)]

    assert detect(events) is None


def test_a_timer_never_fires() -> None:
    events = [search(0, "a"), search(1, "b")]

    assert detect_search_frustration(context(events, now_ms=T0_MS + WINDOW, timer=True)) is None


def test_a_resent_search_counts_once() -> None:
    first = search(0, "gift card")

    assert detect([first, first]) is None


def test_a_late_search_counts() -> None:
    assert detect([search(5000, "giftcard"), search(1000, "gift card")]) is not None


def test_a_late_opened_result_is_placed_where_its_time_puts_it() -> None:
    # Opened at 5 s, after the first empty search, but it arrives after a later search.
    events = [search(0, "gift card"), search(8000, "cards", 5), opened(5000),
              search(12_000, "giftcard")]  # fmt: skip

    assert detect(events) is None


@pytest.mark.parametrize(
    ("thresholds", "events", "fires"),
    [
        (SignalThresholds(search_min_zero_results=3), [search(0, "a"), search(1, "b")], False),
        (SignalThresholds(search_min_zero_results=1), [search(0, "a")], True),
        (SignalThresholds(search_min_reformulations=1), [search(0, "a", 9), search(1, "b", 9)],
         True),
        (SignalThresholds(search_min_reformulations=1, search_window_ms=1000),
         [search(0, "a", 9), search(1001, "b", 9)], False),
    ],
)  # fmt: skip
def test_thresholds_are_respected(
    thresholds: SignalThresholds, events: list[ClickEvent], fires: bool
) -> None:
    assert (detect(events, thresholds) is not None) is fires


@pytest.mark.parametrize(
    ("events", "score", "evidence", "what"),
    [
        pytest.param([search(0, "gift card"), search(5000, "giftcard")], 0.65,
                     {"zero_results": 2.0, "reformulations": 1.0},
                     "2 searches found nothing (last: 'giftcard')", id="empty"),
        pytest.param([search(0, "a"), search(1, "b"), search(2, "c")], 0.75,
                     {"zero_results": 3.0, "reformulations": 2.0},
                     "3 searches found nothing (last: 'c')", id="three-empty"),
        pytest.param([search(0, "a", 9), search(1, "b", 9), search(2, "c", 9), search(3, "d", 9)],
                     0.6, {"zero_results": 0.0, "reformulations": 3.0},
                     "they rephrased their search 3 times within a minute (last: 'd')",
                     id="rephrased"),
    ],
)  # fmt: skip
def test_signal(
    events: list[ClickEvent], score: float, evidence: dict[str, float], what: str
) -> None:
    signal = detect(events)

    assert signal is not None
    assert (signal.reason, signal.kind) == (REASON, KIND) == ("search_frustration", "assist")
    assert signal.score == pytest.approx(score)
    assert signal.evidence == evidence
    assert signal.explanation == f"The customer cannot find what they are looking for: {what}."
