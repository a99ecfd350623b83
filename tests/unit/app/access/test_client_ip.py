"""The client address behind trusted proxies, and its bucket (app/access/client_ip.py)."""

from __future__ import annotations

import pytest

from app.access import TrustedProxies, bucket_key, client_ip

_PROXIES = TrustedProxies(["10.0.0.0/8", "192.0.2.1", "fd00::/8"])


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "expected"),
    [
        ("198.51.100.1", None, "198.51.100.1"),
        ("198.51.100.1", "203.0.113.5", "198.51.100.1"),  # an untrusted peer's header: ignored
        ("10.0.0.1", "203.0.113.5", "203.0.113.5"),
        ("10.0.0.1", "203.0.113.5, 10.0.0.2", "203.0.113.5"),  # two trusted hops
        ("10.0.0.1", "1.1.1.1, 203.0.113.5", "203.0.113.5"),  # 1.1.1.1 written by the client
        ("10.0.0.1", "10.0.0.3, 10.0.0.2", "10.0.0.3"),  # only proxies: the leftmost
        ("10.0.0.1", "garbage, 203.0.113.5", "203.0.113.5"),
        ("10.0.0.1", "203.0.113.5, garbage", "10.0.0.1"),  # nothing to believe past garbage
        ("10.0.0.1", "", "10.0.0.1"),
        ("fd00::1", "2001:db8::7", "2001:db8::7"),
        ("192.0.2.1", "2001:db8::7", "2001:db8::7"),
        (None, "203.0.113.5", "unknown"),
    ],
)
def test_client_ip(peer, forwarded_for, expected):
    assert client_ip(peer, forwarded_for, _PROXIES) == expected


def test_no_trusted_proxies_means_the_peer():
    assert client_ip("10.0.0.1", "203.0.113.5", TrustedProxies()) == "10.0.0.1"
    assert not TrustedProxies()


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("203.0.113.5", "203.0.113.5"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.5", "203.0.113.5"),
        ("fe80::1%eth0", "fe80::/64"),
        ("unknown", "unknown"),
    ],
)
def test_bucket_key(address, expected):
    assert bucket_key(address) == expected


@pytest.mark.parametrize("entry", ["10.0.0.0/33", "host.example", ""])
def test_bad_proxy_entries_are_refused(entry):
    with pytest.raises(ValueError, match="trusted proxy"):
        TrustedProxies([entry])
