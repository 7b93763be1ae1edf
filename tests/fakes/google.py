"""A fake Gemini API: ``models/{model}:generateContent`` (image output) and ``:predict`` (Imagen),
authenticated with ``x-goog-api-key``. The body checks are shared with the Vertex fake.

    with FakeGoogle() as fake:
        config = make_config(providers=fake.providers())
"""

from __future__ import annotations

import base64
from typing import Any

from aiohttp import web
from fakes.core import Recorder
from imagekit import expect_image, png

GEMINI_RATIOS = {"1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"}
IMAGEN_RATIOS = {"1:1", "3:4", "4:3", "9:16", "16:9"}
# ``parameters`` of Imagen's ``predict`` as the python-genai SDK wrote them
# (``_GenerateImagesConfig_to_mldev`` / ``_to_vertex`` in google/genai/models.py): the Gemini API
# takes ``GEMINI_API_PARAMS``; the SDK refused the ``VERTEX_ONLY`` ones there.
GEMINI_API_PARAMS = {
    "sampleCount",
    "aspectRatio",
    "guidanceScale",
    "safetySetting",
    "personGeneration",
    "includeSafetyAttributes",
    "includeRaiReason",
    "language",
    "outputOptions",
    "sampleImageSize",
}
VERTEX_ONLY = {"seed", "addWatermark", "negativePrompt", "enhancePrompt", "storageUri", "editMode"}


def check_generate_content(doc: dict[str, Any], problems: list[str]) -> None:
    contents = doc.get("contents")
    if not isinstance(contents, list) or len(contents) != 1 or not isinstance(contents[0], dict):
        problems.append("contents must hold exactly one Content")
        return
    parts = contents[0].get("parts")
    if not isinstance(parts, list) or not parts:
        problems.append("contents[0].parts missing")
        return
    if not isinstance(parts[0].get("text"), str) or not parts[0]["text"]:
        problems.append("first part must be the text prompt")
    for i, part in enumerate(parts[1:], 1):
        inline = part.get("inlineData") or part.get("inline_data")
        if not isinstance(inline, dict):
            problems.append(f"part {i} is neither text nor inlineData")
            continue
        mime = inline.get("mimeType") or inline.get("mime_type")
        if mime not in ("image/png", "image/jpeg", "image/webp"):
            problems.append(f"part {i}: mimeType {mime!r}")
        expect_image(inline.get("data"), f"part {i}", problems)
    config = doc.get("generationConfig") or {}
    if "IMAGE" not in (config.get("responseModalities") or []):
        problems.append("generationConfig.responseModalities lacks IMAGE")
    image_config = config.get("imageConfig") or {}
    ratio = image_config.get("aspectRatio")
    if ratio is not None and ratio not in GEMINI_RATIOS:
        problems.append(f"imageConfig.aspectRatio {ratio!r}")
    if image_config.get("imageSize") not in (None, "1K", "2K", "4K"):
        problems.append(f"imageConfig.imageSize {image_config.get('imageSize')!r}")
    unknown = set(doc) - {"contents", "generationConfig", "safetySettings", "systemInstruction"}
    if unknown:
        problems.append(f"unknown request fields {sorted(unknown)}")


def gemini_success(index: int = 0) -> dict[str, Any]:
    data = base64.b64encode(png(index)).decode()
    return {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {"text": "Here is your picture."},
                        {"inlineData": {"mimeType": "image/png", "data": data}},
                    ],
                },
                "finishReason": "STOP",
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 7,
            "candidatesTokenCount": 1290,
            "totalTokenCount": 1297,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 7}],
        },
    }


def check_predict(doc: dict[str, Any], problems: list[str], *, vertex: bool) -> None:
    instances = doc.get("instances")
    if not isinstance(instances, list) or len(instances) != 1:
        problems.append("instances must hold exactly one instance")
        return
    if not isinstance(instances[0].get("prompt"), str):
        problems.append("instances[0].prompt missing")
    params = doc.get("parameters")
    if not isinstance(params, dict):
        problems.append("parameters missing")
        return
    count = params.get("sampleCount")
    if not isinstance(count, int) or not 1 <= count <= 4:
        problems.append(f"parameters.sampleCount is {count!r}, expected 1..4")
    if "aspectRatio" in params and params["aspectRatio"] not in IMAGEN_RATIOS:
        problems.append(f"parameters.aspectRatio {params['aspectRatio']!r}")
    if not vertex and set(params) & VERTEX_ONLY:
        problems.append(
            f"Vertex-only parameters sent to the Gemini API: {set(params) & VERTEX_ONLY}"
        )
    elif not vertex and set(params) - GEMINI_API_PARAMS:
        problems.append(f"unknown parameters {sorted(set(params) - GEMINI_API_PARAMS)}")
    if "imageSize" in params:  # generateContent's imageConfig name, not predict's
        problems.append("parameters.imageSize: predict names it sampleImageSize")
    if params.get("sampleImageSize") not in (None, "1K", "2K"):
        problems.append(f"parameters.sampleImageSize {params.get('sampleImageSize')!r}")
    if "seed" in params and params.get("addWatermark") is not False:
        problems.append("seed sent without addWatermark: false")
    options = params.get("outputOptions")
    if options is not None and options.get("mimeType") not in ("image/png", "image/jpeg"):
        problems.append(f"outputOptions.mimeType {options.get('mimeType')!r}")


def predict_success(doc: dict[str, Any]) -> dict[str, Any]:
    params = doc.get("parameters") or {}
    mime = (params.get("outputOptions") or {}).get("mimeType", "image/png")
    fmt = "JPEG" if mime == "image/jpeg" else "PNG"
    return {
        "predictions": [
            {"mimeType": mime, "bytesBase64Encoded": base64.b64encode(png(i, fmt=fmt)).decode()}
            for i in range(int(params.get("sampleCount") or 1))
        ]
    }


class FakeGoogle(Recorder):
    """Scripted replies are keyed by model."""

    def __init__(self, api_key: str = "gemini-key") -> None:
        super().__init__()
        self.api_key = api_key
        self.app.router.add_post("/v1beta/models/{target}", self._handle)

    def providers(self, **extra: Any) -> dict[str, Any]:
        return {"google": {"api_key": self.api_key, "base_url": self.url, **extra}}

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        model, _, method = request.match_info["target"].partition(":")
        received = await self.record(request, key=model)
        problems: list[str] = []
        if request.headers.get("x-goog-api-key") != self.api_key:
            problems.append(f"x-goog-api-key is {request.headers.get('x-goog-api-key')!r}")
        doc = self.expect_json(received, problems)
        if method == "generateContent":
            check_generate_content(doc, problems)
            success = gemini_success
        elif method == "predict":
            check_predict(doc, problems, vertex=False)
            success = lambda: predict_success(doc)  # noqa: E731
        else:
            problems.append(f"unknown method {method!r}")
            success = dict
        return await self.respond(request, received, problems, lambda: success())
