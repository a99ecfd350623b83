"""shop: the browser tracker and the demo shop with its chat widget, served by the worker."""

from __future__ import annotations

from app.shop.views import attach_shop_views

__all__ = ["attach_shop_views"]
