"""Form struggles: a field focused three times, a form refused twice, or three minutes on one."""

from __future__ import annotations

from typing import Any

import pytest

from app.detect.signals import Signal, SignalThresholds
from app.detect.signals.form_struggle import KIND, REASON, detect_form_struggle
from app.ingest.events import ClickEvent
from tests.factories import T0_MS, click, context

DEFAULT_THRESHOLDS = SignalThresholds()


def form(ms: int, type: str, **fields: Any) -> ClickEvent:
    """A form event on the shipping page, ``ms`` after T0."""
    return click(type=type, ts_ms=T0_MS + ms, **{"page": "/checkout/shipping", **fields})


def focus(ms: int, field: str = "postcode", **fields: Any) -> ClickEvent:
    return form(ms, "form_focus", field=field, **fields)


def refused(ms: int, field: str = "postcode", **fields: Any) -> ClickEvent:
    return form(ms, "form_error", field=field, error="invalid", **fields)


def detect(
    events: list[ClickEvent], thresholds: SignalThresholds = DEFAULT_THRESHOLDS
) -> Signal | None:
    return detect_form_struggle(context(events, thresholds=thresholds))


@pytest.mark.parametrize(
    ("events", "fires"),
    [
        # One field, again and again.
        pytest.param([focus(0), focus(5000)], False, id="focus-twice"),
        pytest.param([focus(0), focus(5000), focus(9000)], True, id="focus-three-times"),
        pytest.param([focus(0, "a"), focus(1, "b"), focus(2, "a"), focus(3, "b")], False,
                     id="two-fields-twice-each"),
        # A form refused.
        pytest.param([refused(0)], False, id="one-error"),
        pytest.param([refused(0), refused(4000, "city")], True, id="two-errors-on-one-page"),
        pytest.param([refused(0, props={"form": "address"}),
                      refused(1, page="/checkout/payment", props={"form": "address"})], True,
                     id="two-errors-on-one-named-form"),
        pytest.param([refused(0, props={"form": "address"}), refused(1, props={"form": "card"})],
                     False, id="errors-on-two-forms"),
        pytest.param([refused(0), refused(1, page="/checkout/payment")], False,
                     id="errors-on-two-pages"),
        # Long on one form.
        pytest.param([focus(0, "a"), form(179_999, "form_input", field="b")], False,
                     id="just-under-three-minutes"),
        pytest.param([focus(0, "a"), form(180_000, "form_input", field="b")], True,
                     id="three-minutes"),
        pytest.param([focus(0, "a", props={"form": "f1"}), focus(100_000, "b"),
                      focus(180_000, "c", props={"form": "f2"})], False,
                     id="minutes-spread-over-forms"),
    ],
)  # fmt: skip
def test_when_it_fires(events: list[ClickEvent], fires: bool) -> None:
    assert (detect(events) is not None) is fires


@pytest.mark.parametrize(
    "last",
    [
        pytest.param(click(type="click", element="#continue"), id="click"),
        pytest.param(click(type="page_view", page="/checkout/payment"), id="page_view"),
        pytest.param(click(type="error", error="HTTP 500"), id="error"),
    ],
)
def test_only_form_events_fire(last: ClickEvent) -> None:
    struggling = [focus(0), focus(5000), focus(9000)]

    assert detect([*struggling, last]) is None


def test_a_timer_never_fires() -> None:
    events = [focus(0), focus(5000), focus(9000)]

    assert detect_form_struggle(context(events, now_ms=T0_MS + 600_000, timer=True)) is None


def test_a_resent_focus_counts_once() -> None:
    first = focus(0)

    assert detect([first, first, first]) is None


def test_a_late_focus_counts() -> None:
    # The second focus arrives after the third, 4 s behind it (within the lateness).
    assert detect([focus(0), focus(9000), focus(5000)]) is not None


@pytest.mark.parametrize(
    ("thresholds", "events", "fires"),
    [
        (SignalThresholds(form_field_min_focus=4), [focus(0), focus(1), focus(2)], False),
        (SignalThresholds(form_field_min_focus=2), [focus(0), focus(1)], True),
        (SignalThresholds(form_min_errors=3), [refused(0), refused(1)], False),
        (SignalThresholds(form_min_errors=1), [refused(0)], True),
        (SignalThresholds(form_slow_ms=60_000), [focus(0, "a"), focus(60_000, "b")], True),
        (SignalThresholds(form_slow_ms=60_000), [focus(0, "a"), focus(59_999, "b")], False),
    ],
)
def test_thresholds_are_respected(
    thresholds: SignalThresholds, events: list[ClickEvent], fires: bool
) -> None:
    assert (detect(events, thresholds) is not None) is fires


@pytest.mark.parametrize(
    ("events", "score", "subject", "evidence", "what"),
    [
        pytest.param(
            [refused(0, props={"form": "address"}), refused(1, props={"form": "address"})],
            0.65, "address", {"form_errors": 2.0, "field_focus": 0.0, "form_ms": 1.0},
            "the form on address was refused 2 times", id="errors",
        ),
        pytest.param(
            [focus(0, "email"), refused(1), refused(2), refused(3)],
            0.75, "/checkout/shipping", {"form_errors": 3.0, "field_focus": 1.0, "form_ms": 3.0},
            "the form on /checkout/shipping was refused 3 times", id="errors-not-the-focused-field",
        ),
        pytest.param(
            [focus(0), focus(1), focus(2), focus(3)],
            0.65, "postcode", {"form_errors": 0.0, "field_focus": 4.0, "form_ms": 3.0},
            "they went back to the field 'postcode' 4 times", id="focus",
        ),
        pytest.param(
            [focus(0, "a"), focus(240_000, "b")],
            0.6, "/checkout/shipping", {"form_errors": 0.0, "field_focus": 1.0,
                                        "form_ms": 240_000.0},
            "they have spent 4 minutes on the form on /checkout/shipping", id="slow",
        ),
    ],
)  # fmt: skip
def test_signal(
    events: list[ClickEvent], score: float, subject: str, evidence: dict[str, float], what: str
) -> None:
    signal = detect(events)

    assert signal is not None
    assert (signal.reason, signal.kind) == (REASON, KIND) == ("form_struggle", "assist")
    assert signal.score == pytest.approx(score)
    assert signal.subject == subject
    assert signal.evidence == evidence
    assert signal.explanation == f"The customer seems stuck on a form: {what}."
