"""The generated shop: products, prices, search, and where things are on the page."""

from __future__ import annotations

import numpy as np
import pytest

from app.tools.simulator.catalogue import (
    DEAD_ELEMENTS,
    ELEMENTS,
    FORM_ERRORS,
    NO_RESPONSE_ELEMENTS,
    PAYMENT_FIELDS,
    SHIPPING_FIELDS,
    Catalogue,
    build_catalogue,
    category_page,
    search_page,
)


@pytest.fixture(scope="module")
def shop() -> Catalogue:
    return build_catalogue(np.random.default_rng(0))


def test_the_same_generator_state_gives_the_same_shop() -> None:
    assert build_catalogue(np.random.default_rng(3)) == build_catalogue(np.random.default_rng(3))
    assert build_catalogue(np.random.default_rng(3)) != build_catalogue(np.random.default_rng(4))


@pytest.mark.parametrize("per_category", [1, 5, 12])
def test_every_category_lists_its_products(per_category: int) -> None:
    shop = build_catalogue(np.random.default_rng(1), products_per_category=per_category)
    assert all(len(shop.in_category(c)) == per_category for c in shop.categories)
    ids = [p.product_id for p in shop.products]
    assert len(set(ids)) == len(ids)


def test_products_per_category_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        build_catalogue(np.random.default_rng(0), products_per_category=0)


def test_prices_look_like_shop_prices(shop: Catalogue) -> None:
    for product in shop.products:
        assert type(product.price) is float and product.price >= 4.99
        assert round(product.price * 100) % 100 == 99
    medians = {c: np.median([p.price for p in shop.in_category(c)]) for c in shop.categories}
    assert medians["watches"] > medians["accessories"]


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("", True),
        ("gift card", False),
        ("GIFT CARD", False),
    ],
)
def test_search_counts_products_matching_every_word(
    shop: Catalogue, query: str, found: bool
) -> None:
    assert (shop.search_results(query) > 0) == found


def test_a_product_name_finds_the_product(shop: Catalogue) -> None:
    for product in shop.products:
        assert shop.search_results(product.name.upper()) >= 1


def test_missing_terms_find_nothing(shop: Catalogue) -> None:
    assert len(shop.missing_terms) >= 5
    assert all(shop.search_results(term) == 0 for term in shop.missing_terms)


def test_product_cards_do_not_overlap(shop: Catalogue) -> None:
    for category in shop.categories:
        cards = [shop.product_card(p) for p in shop.in_category(category)]
        assert len({(c.x, c.y) for c in cards}) == len(cards)
        assert len({c.selector for c in cards}) == len(cards)
        assert all(c.interactive and c.tag == "a" for c in cards)


def test_nav_links_are_distinct(shop: Catalogue) -> None:
    links = [shop.nav_link(c) for c in shop.categories]
    assert len({link.x for link in links}) == len(links)


@pytest.mark.parametrize(
    ("selector", "interactive"),
    [
        ("#add-to-cart", True),
        ("#pay", True),
        ("#search-box", True),
        ("#size-select", True),
        (".product-image", False),
        (".price", False),
        (".hero-banner", False),
    ],
)
def test_elements_know_whether_they_react(selector: str, interactive: bool) -> None:
    assert ELEMENTS[selector].interactive is interactive


def test_dead_elements_do_nothing_when_clicked() -> None:
    assert DEAD_ELEMENTS and not any(e.interactive for e in DEAD_ELEMENTS)


def test_form_errors_belong_to_form_fields() -> None:
    assert set(FORM_ERRORS) <= set(SHIPPING_FIELDS) | set(PAYMENT_FIELDS)
    assert all(message.startswith(f"{field}: ") for field, message in FORM_ERRORS.items())


@pytest.mark.parametrize(
    ("query", "page"),
    [
        ("boots", "/search?q=boots"),
        ("rain jacket", "/search?q=rain+jacket"),
        ("50% off & more", "/search?q=50%25+off+%26+more"),
    ],
)
def test_search_page(query: str, page: str) -> None:
    assert search_page(query) == page


def test_category_page() -> None:
    assert category_page("home") == "/c/home"


@pytest.mark.parametrize(
    ("selector", "marker"),
    [
        ("#qty-plus", "plus"),
        ("#qty-minus", "minus"),
        (".carousel-next", "carousel"),
        (".carousel-prev", "carousel"),
        (".pagination-next", "pagination"),
        (".view-toggle", "toggle"),
    ],
)
def test_repeat_click_elements_say_so_in_their_selector(selector: str, marker: str) -> None:
    # Sites mark them by selector; the published rules exclude these from rage clicks.
    assert marker in selector and ELEMENTS[selector].interactive


def test_no_response_elements_say_so_in_their_selector() -> None:
    markers = ("download", "print", "copy", "share")
    assert NO_RESPONSE_ELEMENTS
    assert all(any(m in e.selector for m in markers) for e in NO_RESPONSE_ELEMENTS)
