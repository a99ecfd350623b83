"""access: who may call the HTTP API, and how often (pure: no aiohttp, no clock, no settings)."""

from __future__ import annotations

from app.access.client_ip import TrustedProxies, bucket_key, client_ip
from app.access.keys import Access, Credentials, stream_token
from app.access.rate_limit import TokenBuckets

__all__ = [
    "Access",
    "Credentials",
    "TokenBuckets",
    "TrustedProxies",
    "bucket_key",
    "client_ip",
    "stream_token",
]
