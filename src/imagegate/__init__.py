"""imagegate: a self-hosted AI gateway for image generation speaking orq.ai's router API."""

from .config import Config, ConfigError, load_config
from .errors import GatewayError
from .gateway import CallContext, Gateway, ImagesResponse
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

__all__ = [
    "Cache", "CallContext", "Config", "ConfigError", "CreateImageEditOrq", "CreateImageOrq",
    "CreateImageRequestBody", "CreateImageVariationOrq", "CreateImageVariationRequestBody",
    "Fallbacks", "Gateway", "GatewayError", "GeneratedImage", "ImageRequest", "ImageResult",
    "ImagesResponse", "LoadBalancer", "PostV2ProxyImagesGenerationsOrq", "Prompt",
    "PublicContact", "PublicIdentity", "Retry", "RoutingOptions", "Thread", "Timeout",
    "UploadedFile", "load_config",
]  # fmt: skip
__version__ = "0.1.0"
