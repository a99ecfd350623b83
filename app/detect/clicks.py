# cython: annotation_typing=True
"""What kind of click a click is: traits the rage- and dead-click rules exclude.

Pure. Published rules agree on what does not count (``FRICTION-RULES.md``):
PostHog and Datadog leave out text inputs, textareas, selects and
contenteditable (typing and text selection), PostHog since 1.382 also +/-
steppers, Datadog cancels a chain when the click changed the selection, and
Sentry leaves out downloads and links that open elsewhere. Sites add their own
through selector substrings (settings) or a ``props`` flag on the event.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.errors import ConfigError
from app.ingest.events import ClickEvent

__all__ = [
    "DEFAULT_NO_RESPONSE_SELECTORS",
    "DEFAULT_REPEAT_CLICK_SELECTORS",
    "FORM_CONTROL",
    "NO_RESPONSE_OK",
    "REPEAT_OK",
    "SELECTION",
    "ClickRules",
    "click_flags",
]

#: Clicking again and again is how the element is used (steppers, carousels, pagination, ...).
REPEAT_OK = 1
#: The click selected text (a double or triple click to select, not frustration).
SELECTION = 2
#: A form control: focusing and typing, not a button press.
FORM_CONTROL = 4
#: A click that answers with no page event by design (download, print, copy, share).
NO_RESPONSE_OK = 8

#: Selector substrings of elements that are clicked repeatedly by design.
DEFAULT_REPEAT_CLICK_SELECTORS: tuple[str, ...] = (
    "qty", "quantity", "stepper", "increment", "decrement", "plus", "minus", "carousel",
    "slider", "pagination", "pager", "toggle", "switch", "datepicker", "date-picker",
    "calendar", "zoom",
)  # fmt: skip
#: Selector substrings of elements whose click changes nothing on the page by design.
DEFAULT_NO_RESPONSE_SELECTORS: tuple[str, ...] = (
    "download", "print", "copy", "clipboard", "share", "export", "pdf",
)  # fmt: skip

_FORM_TAGS = frozenset({"input", "textarea", "select", "option", "label"})


@dataclass(slots=True, frozen=True)
class ClickRules:
    """Selector substrings that mark repeat-click and no-response elements, in any case.

    Examples
    --------
    >>> ClickRules(repeat_click_selectors=("Spin-Wheel",)).repeat_click_selectors
    ('spin-wheel',)
    """

    repeat_click_selectors: tuple[str, ...] = DEFAULT_REPEAT_CLICK_SELECTORS
    no_response_selectors: tuple[str, ...] = DEFAULT_NO_RESPONSE_SELECTORS

    def __post_init__(self) -> None:
        for name in ("repeat_click_selectors", "no_response_selectors"):
            selectors: tuple[str, ...] = getattr(self, name)
            if any(not s.strip() for s in selectors):
                # An empty substring is in every selector: no click would ever count.
                raise ConfigError(f"{name}: an empty selector would match every element")
            # Elements are matched lower-cased: a setting written "Carousel" must match too.
            object.__setattr__(self, name, tuple(s.lower() for s in selectors))


def click_flags(event: ClickEvent, rules: ClickRules) -> int:
    """The traits of a click (0 for any other event), as a bit set.

    Parameters
    ----------
    event
        A click event. ``props`` may say ``tag``, ``selection``, ``repeat_click``,
        ``contenteditable``, ``download`` and ``target`` (the tracker sends them).
    rules
        The selector substrings of this deployment.

    Examples
    --------
    >>> from app.ingest.events import ClickEvent
    >>> e = ClickEvent("e", "c", "s", "click", 1, element="#qty-plus")
    >>> click_flags(e, ClickRules()) == REPEAT_OK
    True
    >>> e = ClickEvent("e", "c", "s", "click", 1, element="p.intro", props={"selection": True})
    >>> click_flags(e, ClickRules()) == SELECTION
    True
    """
    if event.type != "click":
        return 0
    flags = 0
    element = (event.element or "").lower()
    props = event.props
    if props:
        if props.get("selection") is True:
            flags |= SELECTION
        if props.get("repeat_click") is True:
            flags |= REPEAT_OK
        tag = props.get("tag")
        if (isinstance(tag, str) and tag.lower() in _FORM_TAGS) or props.get("contenteditable"):
            flags |= FORM_CONTROL
        if props.get("download") or props.get("target") in ("_blank", "_new"):
            flags |= NO_RESPONSE_OK
    if element:
        if any(s in element for s in rules.repeat_click_selectors):
            flags |= REPEAT_OK
        if any(s in element for s in rules.no_response_selectors):
            flags |= NO_RESPONSE_OK
        if element.startswith(("input", "textarea", "select")):
            flags |= FORM_CONTROL
    return flags
