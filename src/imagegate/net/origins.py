"""Origins (host, port) of URLs, and which ones a provider's own configuration vouches for.

Why: a URL on the host:port the operator configured for a provider is trusted (the operator
chose it, and test or on-premise providers legitimately live on private addresses); any other
URL a provider hands back is only fetched through the address guard, and the provider's
credentials are never sent to it::

    origin_of("https://API.example.com/v1")   # ("api.example.com", 443)
    trusted_origins(candidate.provider)        # from the adapter's ``origin_urls()``
"""

from __future__ import annotations

from yarl import URL

Origin = tuple[str, int]
DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str | URL) -> Origin | None:
    """``(host, port)`` of an http(s) URL (host lowercased, default port filled), or None."""
    try:
        parsed = url if isinstance(url, URL) else URL(url)
        scheme, host = parsed.scheme.lower(), parsed.host
        port = parsed.explicit_port or DEFAULT_PORTS.get(scheme)
    except (ValueError, TypeError):
        return None
    if scheme not in DEFAULT_PORTS or not host or port is None:
        return None
    return host.lower().rstrip("."), port


def origins_of(urls: tuple[str, ...] | list[str]) -> frozenset[Origin]:
    return frozenset(o for o in (origin_of(u) for u in urls) if o is not None)


def trusted_origins(provider: object) -> frozenset[Origin]:
    """Origins of the provider's configured base URL(s); empty for providers without any."""
    urls = getattr(provider, "origin_urls", None)
    if not callable(urls):
        return frozenset()
    found = urls()
    return origins_of(tuple(found)) if found else frozenset()


def in_family(host: str, family: str) -> bool:
    """``host`` is ``family`` or one of its subdomains (``api.eu1.bfl.ai`` in ``bfl.ai``)."""
    host = host.lower().rstrip(".")
    return host == family or host.endswith("." + family)
