"""A small generated shop: products, pages, page elements, forms and checkout steps.

The page layout is a fixed 1280 px wide desktop design, so a click on an element
lands where that element is drawn; only the products and prices are drawn from
the random generator.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote_plus

import numpy as np

__all__ = [
    "CHECKOUT_STEPS",
    "DEAD_ELEMENTS",
    "ELEMENTS",
    "FORM_ERRORS",
    "NO_RESPONSE_ELEMENTS",
    "PAYMENT_FIELDS",
    "PROFILE_FIELDS",
    "REVIEW_FIELDS",
    "SHIPPING_FIELDS",
    "STEP_PAGES",
    "Catalogue",
    "Element",
    "Product",
    "build_catalogue",
    "category_page",
    "search_page",
]

CHECKOUT_STEPS: tuple[str, ...] = ("cart", "shipping", "payment", "review")
STEP_PAGES: dict[str, str] = {
    "cart": "/cart",
    "shipping": "/checkout/shipping",
    "payment": "/checkout/payment",
    "review": "/checkout/review",
}
SHIPPING_FIELDS: tuple[str, ...] = ("email", "full_name", "street", "city", "postcode", "phone")
PAYMENT_FIELDS: tuple[str, ...] = ("card_number", "card_expiry", "card_cvc", "card_name")
REVIEW_FIELDS: tuple[str, ...] = ("rating", "review_title", "review_body")
PROFILE_FIELDS: tuple[str, ...] = ("birthday", "phone", "size_preference")
#: The message a shop shows for a field it refuses.
FORM_ERRORS: dict[str, str] = {
    "email": "email: not a valid address",
    "postcode": "postcode: not a valid postcode for the selected country",
    "phone": "phone: must include the country code",
    "card_number": "card_number: number is incomplete",
    "card_expiry": "card_expiry: use MM/YY",
}


@dataclass(slots=True, frozen=True)
class Product:
    """One product on sale."""

    product_id: str
    name: str
    category: str
    price: float

    @property
    def page(self) -> str:
        """The product's page path."""
        return f"/p/{self.product_id}"


@dataclass(slots=True, frozen=True)
class Element:
    """Something drawn on a page: its box (centre and size in CSS px), tag and whether it reacts."""

    selector: str
    x: float
    y: float
    width: float
    height: float
    tag: str
    interactive: bool


def _element(selector: str, box: tuple[float, float, float, float], tag: str) -> Element:
    return Element(selector, *box, tag=tag, interactive=tag in ("a", "button", "input", "select"))


ELEMENTS: dict[str, Element] = {
    e.selector: e
    for e in (
        _element("#search-box", (640, 36, 420, 36), "input"),
        _element("#cart-icon", (1220, 36, 40, 40), "a"),
        _element("#help-link", (1150, 36, 60, 24), "a"),
        _element("#account-link", (1090, 36, 60, 24), "a"),
        _element("#size-select", (1000, 400, 240, 40), "select"),
        _element("#add-to-cart", (1000, 470, 240, 48), "button"),
        _element("#apply-coupon", (980, 520, 120, 40), "button"),
        _element("#remove-item", (860, 300, 90, 30), "button"),
        _element("#edit-cart", (300, 140, 120, 30), "a"),
        _element("#checkout", (1040, 620, 280, 52), "button"),
        _element("#continue", (1040, 720, 280, 52), "button"),
        _element("#pay", (1040, 680, 280, 52), "button"),
        _element("#place-order", (1040, 640, 280, 52), "button"),
        # Things people click that do nothing: a product photo without zoom, a price, ...
        _element(".product-image", (420, 420, 560, 560), "img"),
        _element(".price", (1000, 300, 140, 40), "span"),
        _element(".rating-stars", (1000, 250, 120, 24), "div"),
        _element(".size-chart-preview", (1000, 360, 200, 30), "span"),
        _element(".delivery-info", (1000, 560, 280, 40), "p"),
        _element(".hero-banner", (640, 220, 1200, 320), "div"),
        _element(".product-description", (420, 800, 560, 120), "p"),
        # Clicked again and again by design: steppers, carousels, listings, view toggles.
        _element("#qty-minus", (930, 433, 28, 24), "button"),
        _element("#qty-plus", (1070, 433, 28, 24), "button"),
        _element(".carousel-prev", (100, 1020, 40, 40), "button"),
        _element(".carousel-next", (1180, 1020, 40, 40), "button"),
        _element(".pagination-next", (700, 1900, 80, 32), "a"),
        _element(".view-toggle", (1150, 140, 80, 28), "button"),
        # Clicks the page does not answer by design.
        _element("#print-receipt", (700, 400, 160, 40), "button"),
        _element("#download-invoice", (900, 400, 160, 40), "a"),
        _element("#copy-link", (1100, 200, 100, 28), "button"),
        _element("#share", (1200, 200, 60, 28), "button"),
        # Micro-actions.
        _element("#wishlist", (1000, 540, 240, 36), "button"),
        _element("#write-review", (420, 1100, 160, 40), "button"),
        _element("#submit-review", (420, 1400, 160, 44), "button"),
        _element("#save-profile", (640, 700, 200, 44), "button"),
    )
}
#: The non-interactive elements on a product page, where dead clicks happen.
DEAD_ELEMENTS: tuple[Element, ...] = tuple(
    ELEMENTS[s]
    for s in (".product-image", ".price", ".rating-stars", ".size-chart-preview", ".delivery-info")
)

#: Buttons and links whose click changes nothing on the page, by design (printing, copying).
NO_RESPONSE_ELEMENTS: tuple[Element, ...] = tuple(
    ELEMENTS[s] for s in ("#print-receipt", "#download-invoice", "#copy-link", "#share")
)

# category → (median price, product nouns); prices are lognormal around the median.
_CATEGORIES: dict[str, tuple[float, tuple[str, ...]]] = {
    "shoes": (79.0, ("running shoes", "sneakers", "boots", "sandals", "loafers")),
    "jackets": (129.0, ("rain jacket", "down jacket", "denim jacket", "fleece", "parka")),
    "bags": (59.0, ("backpack", "tote bag", "duffel", "messenger bag", "wallet")),
    "watches": (189.0, ("chronograph", "dive watch", "smartwatch", "field watch")),
    "home": (39.0, ("mug", "throw blanket", "candle", "vase", "cushion")),
    "accessories": (24.0, ("scarf", "beanie", "sunglasses", "belt", "gloves")),
}
_ADJECTIVES = ("classic", "trail", "urban", "lightweight", "organic", "vintage", "everyday")
_COLOURS = ("black", "navy", "olive", "sand", "red", "grey", "white")
# What shoppers look for and this shop does not sell.
_MISSING_TERMS = (
    "gift card", "snowboard", "kids raincoat", "phone case", "yoga mat", "ski goggles",
    "swimsuit", "laptop sleeve", "umbrella", "wedding shoes",
)  # fmt: skip
_PRICE_SIGMA = 0.35


@dataclass(slots=True, frozen=True)
class Catalogue:
    """The shop the simulated customers visit."""

    products: tuple[Product, ...]
    categories: tuple[str, ...]
    #: Queries that find nothing here.
    missing_terms: tuple[str, ...]

    def in_category(self, category: str) -> tuple[Product, ...]:
        """The products of one category, in listing order."""
        return tuple(p for p in self.products if p.category == category)

    def search_results(self, query: str) -> int:
        """How many products the shop's search finds: names containing every word.

        Examples
        --------
        >>> boots = Product("sku-1", "navy trail boots", "shoes", 89.99)
        >>> shop = Catalogue((boots,), ("shoes",), missing_terms=())
        >>> shop.search_results("Trail boots"), shop.search_results("trial boots")
        (1, 0)
        """
        words = query.lower().split()
        return sum(all(w in p.name for w in words) for p in self.products)

    def product_card(self, product: Product) -> Element:
        """The product's card in its category listing (a grid of five columns)."""
        index = self.in_category(product.category).index(product)
        row, column = divmod(index, 5)
        return Element(
            f".product-card:nth-child({index + 1})",
            200 + 220 * column, 300 + 320 * row, 200, 280, "a", interactive=True,
        )  # fmt: skip

    def nav_link(self, category: str) -> Element:
        """The category's link in the top navigation bar."""
        index = self.categories.index(category)
        return Element(f"#nav-{category}", 260 + 130 * index, 90, 110, 28, "a", interactive=True)


def category_page(category: str) -> str:
    """The category listing's page path.

    Examples
    --------
    >>> category_page("shoes")
    '/c/shoes'
    """
    return f"/c/{category}"


def search_page(query: str) -> str:
    """The search results page path for ``query``.

    Examples
    --------
    >>> search_page("rain jacket")
    '/search?q=rain+jacket'
    """
    return f"/search?q={quote_plus(query)}"


def build_catalogue(rng: np.random.Generator, products_per_category: int = 12) -> Catalogue:
    """Draw a shop: every category gets ``products_per_category`` named, priced products.

    Parameters
    ----------
    rng
        The simulation's generator; the shop depends on it only.
    products_per_category
        How many products each category lists.

    Examples
    --------
    >>> shop = build_catalogue(np.random.default_rng(0), products_per_category=3)
    >>> len(shop.products), shop.categories[0], shop.products[0].product_id
    (18, 'shoes', 'sku-0001')
    >>> all(shop.search_results(term) == 0 for term in shop.missing_terms)
    True
    """
    if products_per_category < 1:
        raise ValueError("products_per_category must be at least 1")
    products: list[Product] = []
    for category, (median_price, nouns) in _CATEGORIES.items():
        for _ in range(products_per_category):
            name = " ".join(
                (
                    _COLOURS[int(rng.integers(len(_COLOURS)))],
                    _ADJECTIVES[int(rng.integers(len(_ADJECTIVES)))],
                    nouns[int(rng.integers(len(nouns)))],
                )
            )
            # Shop prices end in .99 and never go below 4.99.
            price = max(4.99, round(median_price * float(rng.lognormal(0.0, _PRICE_SIGMA))) - 0.01)
            products.append(Product(f"sku-{len(products) + 1:04d}", name, category, price))
    shop = Catalogue(tuple(products), tuple(_CATEGORIES), ())
    missing = tuple(t for t in _MISSING_TERMS if shop.search_results(t) == 0)
    return Catalogue(shop.products, shop.categories, missing)
