"""``click_flags``: the traits that keep a click out of the rage- and dead-click rules."""

from __future__ import annotations

from typing import Any

import pytest

from app.detect.clicks import (
    DEFAULT_NO_RESPONSE_SELECTORS,
    DEFAULT_REPEAT_CLICK_SELECTORS,
    FORM_CONTROL,
    NO_RESPONSE_OK,
    REPEAT_OK,
    SELECTION,
    ClickRules,
    click_flags,
)
from app.errors import ConfigError
from tests.factories import click

DEFAULT_RULES = ClickRules()


def flags(rules: ClickRules = DEFAULT_RULES, **fields: Any) -> int:
    return click_flags(click(**fields), rules)


@pytest.mark.parametrize(
    ("props", "expected"),
    [
        pytest.param(None, 0, id="no-props"),
        pytest.param({}, 0, id="empty-props"),
        pytest.param({"tag": "button"}, 0, id="a-button"),
        pytest.param({"tag": "a", "target": "_self"}, 0, id="a-link-here"),
        pytest.param({"selection": True}, SELECTION, id="selection"),
        pytest.param({"selection": False}, 0, id="no-selection"),
        pytest.param({"selection": "true"}, 0, id="selection-must-be-a-boolean"),
        pytest.param({"repeat_click": True}, REPEAT_OK, id="repeat-click"),
        pytest.param({"repeat_click": 1}, 0, id="repeat-click-must-be-a-boolean"),
        pytest.param({"tag": "input"}, FORM_CONTROL, id="input"),
        pytest.param({"tag": "TEXTAREA"}, FORM_CONTROL, id="textarea-any-case"),
        pytest.param({"tag": "select"}, FORM_CONTROL, id="select"),
        pytest.param({"tag": "option"}, FORM_CONTROL, id="option"),
        pytest.param({"tag": "label"}, FORM_CONTROL, id="label"),
        pytest.param({"tag": 7}, 0, id="tag-not-a-string"),
        pytest.param({"tag": "div", "contenteditable": True}, FORM_CONTROL, id="contenteditable"),
        pytest.param({"download": True}, NO_RESPONSE_OK, id="download"),
        pytest.param({"download": "invoice.pdf"}, NO_RESPONSE_OK, id="download-with-a-name"),
        pytest.param({"target": "_blank"}, NO_RESPONSE_OK, id="new-tab"),
        pytest.param({"target": "_new"}, NO_RESPONSE_OK, id="new-window"),
        pytest.param(
            {"tag": "textarea", "selection": True, "repeat_click": True},
            FORM_CONTROL | SELECTION | REPEAT_OK,
            id="several",
        ),
    ],
)
def test_props_flags(props: dict[str, Any] | None, expected: int) -> None:
    assert flags(element="#x", props=props) == expected


@pytest.mark.parametrize(
    ("element", "expected"),
    [
        pytest.param("#buy", 0, id="plain-button"),
        pytest.param("#qty-plus", REPEAT_OK, id="stepper-plus"),
        pytest.param("button.quantity-minus", REPEAT_OK, id="stepper-minus"),
        pytest.param(".carousel-next", REPEAT_OK, id="carousel"),
        pytest.param("a.pagination-next", REPEAT_OK, id="pagination"),
        pytest.param(".view-toggle", REPEAT_OK, id="toggle"),
        pytest.param("#in-stock-switch", REPEAT_OK, id="switch"),
        pytest.param(".datepicker-next-month", REPEAT_OK, id="date-picker"),
        pytest.param("#calendar td", REPEAT_OK, id="calendar"),
        pytest.param("#print-receipt", NO_RESPONSE_OK, id="print"),
        pytest.param("#download-invoice", NO_RESPONSE_OK, id="download"),
        pytest.param("#copy-link", NO_RESPONSE_OK, id="copy"),
        pytest.param("button.share", NO_RESPONSE_OK, id="share"),
        pytest.param("a.invoice-pdf", NO_RESPONSE_OK, id="pdf"),
        pytest.param("input#email", FORM_CONTROL, id="input"),
        pytest.param("textarea.note", FORM_CONTROL, id="textarea"),
        pytest.param("select#size", FORM_CONTROL, id="select"),
        # Only a tag at the start is a tag: a class that mentions one is not.
        pytest.param(".input-hint", 0, id="class-mentioning-input"),
        pytest.param("#zoom-download", REPEAT_OK | NO_RESPONSE_OK, id="both-lists"),
    ],
)
def test_selector_substrings(element: str, expected: int) -> None:
    assert flags(element=element) == expected


@pytest.mark.parametrize(
    ("element", "expected"),
    [
        ("#QTY-Plus", REPEAT_OK),
        (".Carousel-Next", REPEAT_OK),
        ("#Print-Receipt", NO_RESPONSE_OK),
        ("INPUT#email", FORM_CONTROL),
    ],
)
def test_elements_match_in_any_case(element: str, expected: int) -> None:
    assert flags(element=element) == expected


@pytest.mark.parametrize(
    ("rules", "element", "expected"),
    [
        pytest.param(ClickRules(repeat_click_selectors=("spin",)), "#spin-wheel", REPEAT_OK,
                     id="own-repeat-list"),
        pytest.param(ClickRules(repeat_click_selectors=("spin",)), "#qty-plus", 0,
                     id="own-list-replaces-the-defaults"),
        pytest.param(ClickRules(no_response_selectors=("wallet",)), "#add-to-wallet",
                     NO_RESPONSE_OK, id="own-no-response-list"),
        pytest.param(ClickRules(repeat_click_selectors=("Spin-Wheel",)), "#spin-wheel",
                     REPEAT_OK, id="settings-in-any-case"),
        pytest.param(ClickRules(repeat_click_selectors=(), no_response_selectors=()),
                     "#qty-plus", 0, id="no-lists"),
        pytest.param(ClickRules(repeat_click_selectors=(), no_response_selectors=()),
                     "input#email", FORM_CONTROL, id="tags-need-no-list"),
    ],
)  # fmt: skip
def test_settings_lists(rules: ClickRules, element: str, expected: int) -> None:
    assert flags(rules, element=element) == expected


@pytest.mark.parametrize(
    "rules",
    [
        {"repeat_click_selectors": ("qty", "")},
        {"no_response_selectors": (" ",)},
    ],
)
def test_an_empty_selector_fails_at_once(rules: dict[str, tuple[str, ...]]) -> None:
    with pytest.raises(ConfigError, match="empty selector would match every element"):
        ClickRules(**rules)


def test_the_default_lists_are_lower_case_and_kept() -> None:
    assert DEFAULT_RULES.repeat_click_selectors == DEFAULT_REPEAT_CLICK_SELECTORS
    assert DEFAULT_RULES.no_response_selectors == DEFAULT_NO_RESPONSE_SELECTORS
    for selector in (*DEFAULT_REPEAT_CLICK_SELECTORS, *DEFAULT_NO_RESPONSE_SELECTORS):
        assert selector == selector.lower()


def test_props_and_selectors_combine() -> None:
    assert flags(element="#qty-plus", props={"selection": True}) == REPEAT_OK | SELECTION


@pytest.mark.parametrize("event_type", ["page_view", "scroll", "form_focus", "add_to_cart"])
def test_only_clicks_have_traits(event_type: str) -> None:
    props = {"tag": "input", "selection": True, "repeat_click": True, "download": True}

    assert flags(type=event_type, element="#qty-plus", props=props) == 0


def test_a_click_without_element_has_only_its_props_traits() -> None:
    assert flags(element=None) == 0
    assert flags(element=None, props={"selection": True}) == SELECTION


def test_traits_are_distinct_bits() -> None:
    bits = [REPEAT_OK, SELECTION, FORM_CONTROL, NO_RESPONSE_OK]

    assert all(bit > 0 and bit & (bit - 1) == 0 for bit in bits)
    assert len(set(bits)) == len(bits)
