"""imagegate: a self-hosted AI gateway for image generation speaking orq.ai's router API.

Names are imported lazily so ``imagegate`` CLI start-up (and a bad-config exit) stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import Config, ConfigError, load_config
    from .errors import GatewayError
    from .gateway import CallContext, Gateway, ImagesResponse
    from .jobs.client import JobHandle
    from .models import (
        Cache,
        CreateImageEditOrq,
        CreateImageOrq,
        CreateImageRequestBody,
        CreateImageVariationOrq,
        CreateImageVariationRequestBody,
        Fallbacks,
        LoadBalancer,
        PostV2ProxyImagesGenerationsOrq,
        Prompt,
        PublicContact,
        PublicIdentity,
        Retry,
        RoutingOptions,
        Thread,
        Timeout,
    )
    from .request import GeneratedImage, ImageRequest, ImageResult, UploadedFile

_WHERE = {
    "Config": "config",
    "ConfigError": "config",
    "load_config": "config",
    "GatewayError": "errors",
    "CallContext": "gateway",
    "Gateway": "gateway",
    "ImagesResponse": "gateway",
    "JobHandle": "jobs.client",
    "GeneratedImage": "request",
    "ImageRequest": "request",
    "ImageResult": "request",
    "UploadedFile": "request",
    **{
        name: "models"
        for name in (
            "Cache",
            "CreateImageEditOrq",
            "CreateImageOrq",
            "CreateImageRequestBody",
            "CreateImageVariationOrq",
            "CreateImageVariationRequestBody",
            "Fallbacks",
            "LoadBalancer",
            "PostV2ProxyImagesGenerationsOrq",
            "Prompt",
            "PublicContact",
            "PublicIdentity",
            "Retry",
            "RoutingOptions",
            "Thread",
            "Timeout",
        )
    },
}
__all__ = [
    "Cache",
    "CallContext",
    "Config",
    "ConfigError",
    "CreateImageEditOrq",
    "CreateImageOrq",
    "CreateImageRequestBody",
    "CreateImageVariationOrq",
    "CreateImageVariationRequestBody",
    "Fallbacks",
    "Gateway",
    "GatewayError",
    "GeneratedImage",
    "ImageRequest",
    "ImageResult",
    "ImagesResponse",
    "JobHandle",
    "LoadBalancer",
    "PostV2ProxyImagesGenerationsOrq",
    "Prompt",
    "PublicContact",
    "PublicIdentity",
    "Retry",
    "RoutingOptions",
    "Thread",
    "Timeout",
    "UploadedFile",
    "load_config",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'imagegate' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
