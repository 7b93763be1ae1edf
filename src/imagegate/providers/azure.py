"""``azure/<model>``: OpenAI image models deployed on Azure OpenAI (Azure AI Foundry).

``POST {endpoint}/openai/deployments/{deployment}/images/generations?api-version=...`` (JSON)
and ``.../images/edits`` (multipart), authenticated with the ``api-key`` header (or a Microsoft
Entra ID token as ``Authorization: Bearer``). Bodies and answers are OpenAI's, minus ``model``:
the deployment in the path picks the model. Docs:
https://learn.microsoft.com/en-us/azure/ai-foundry/openai/how-to/dall-e and
https://learn.microsoft.com/en-us/azure/ai-foundry/openai/reference-preview (image generation).

Config: ``base_url`` (the resource endpoint, e.g. https://myres.openai.azure.com), ``api_key``
or ``access_token``, ``api_version`` (default ``2025-04-01-preview``, the first to serve
gpt-image-1; ``v1`` selects the GA ``/openai/v1/images/...`` API with the deployment in the
body), ``deployments`` (model → deployment name; the model name itself by default).
Azure serves no variations endpoint. Refusals by Azure's content filter ("...safety system",
``contentFilter``) are mapped to 400 ``content_policy_violation``.
"""

from __future__ import annotations

import dataclasses
from urllib.parse import quote

from ..config import ProviderConfig
from ..errors import UpstreamHTTPError
from ..request import ImageRequest, ImageResult
from .base import Capabilities
from .failures import not_configured
from .openai import EDIT_FIELDS, GEN_FIELDS, OpenAIProvider, parse_images_response
from .translate import remap_policy

DEFAULT_API_VERSION = "2025-04-01-preview"


class AzureProvider(OpenAIProvider):
    """OpenAI's wire format on Azure's deployment-scoped paths."""

    default_base_url = ""  # no default: every Azure resource has its own endpoint

    def __init__(self, name: str, config: ProviderConfig) -> None:
        super().__init__(name, config)
        self.api_version = config.api_version or DEFAULT_API_VERSION

    def capabilities(self, model: str) -> Capabilities:
        caps = super().capabilities(model)
        return dataclasses.replace(caps, operations=caps.operations - {"variations"})

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        token = self.config.option("access_token")
        if token:
            headers["Authorization"] = f"Bearer {token}"
        elif self.config.api_key:
            headers["api-key"] = self.config.api_key
        return headers

    def deployment(self, model: str) -> str:
        return self.config.deployments.get(model, model)

    def _url(self, model: str, operation: str) -> str:
        if not self.base_url:
            raise not_configured(self.name, "base_url (the Azure resource endpoint) is missing")
        if not (self.config.option("access_token") or self.config.api_key or self.config.headers):
            raise not_configured(self.name, "api_key (or access_token) is missing")
        if self.api_version == "v1":
            return f"{self.base_url}/openai/v1/images/{operation}"
        name = quote(self.deployment(model), safe="")
        return f"{self.base_url}/openai/deployments/{name}/images/{operation}"

    async def call(self, model: str, request: ImageRequest) -> ImageResult:
        url = self._url(model, request.operation)
        names = GEN_FIELDS if request.operation == "generations" else EDIT_FIELDS
        fields = self._fields(model, request, names)
        if self.api_version == "v1":  # the v1 API names the deployment in the body
            params: dict[str, str] = {}
            fields["model"] = self.deployment(model)
        else:  # the deployment in the path chooses the model
            params = {"api-version": self.api_version}
            fields.pop("model", None)
        try:
            if request.operation == "generations":
                doc = await self.send_json(
                    "POST", url, headers=self._headers(), json=fields, params=params
                )
            else:
                doc = await self._send_form(url, fields, request, params=params)
        except UpstreamHTTPError as exc:
            remap_policy(exc, (400,))
            raise
        return parse_images_response(doc, self.name)
