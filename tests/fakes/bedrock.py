"""A fake Amazon Bedrock runtime ``InvokeModel`` that verifies SigV4 signatures with botocore.

``POST /model/{modelId}/invoke``: the ``Authorization`` header must be a valid
``AWS4-HMAC-SHA256`` signature of this very request (method, the raw percent-encoded path,
every signed header, the body hash) for the fake's credentials, scope
``<date>/<region>/bedrock/aws4_request``; the fake recomputes it with botocore's ``SigV4Auth``.
A bad signature is answered like AWS (403 ``InvalidSignatureException``). Bodies are checked
per model family (Titan Image Generator, Nova Canvas, Stability) and answered with tiny PNGs.
Input images must hold no transparent or translucent pixel and masks only pure black and white
with something to change (https://docs.aws.amazon.com/nova/latest/userguide/image-gen-access.html);
Nova seeds must lie in 0..858,993,459.

    with FakeBedrock() as fake:
        config = make_config(providers=fake.providers())
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from typing import Any

from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from fakes.core import Received, Recorder, Reply
from imagekit import decode_b64, png

__all__ = ["FakeBedrock", "Reply", "aws_error"]

AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/"
    r"(?P<service>[^/]+)/aws4_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), "
    r"Signature=(?P<sig>[0-9a-f]{64})$"
)
TITAN_SIZES = {
    (1024, 1024),
    (768, 768),
    (512, 512),
    (768, 1152),
    (384, 576),
    (1152, 768),
    (576, 384),
    (768, 1280),
    (384, 640),
    (1280, 768),
    (640, 384),
    (896, 1152),
    (448, 576),
    (1152, 896),
    (576, 448),
    (768, 1408),
    (384, 704),
    (1408, 768),
    (704, 384),
    (640, 1408),
    (320, 704),
    (1408, 640),
    (704, 320),
    (1152, 640),
    (1173, 640),
}
TASK_PARAMS = {
    "TEXT_IMAGE": "textToImageParams",
    "INPAINTING": "inPaintingParams",
    "IMAGE_VARIATION": "imageVariationParams",
}
CONFIG_KEYS = {"numberOfImages", "width", "height", "quality", "cfgScale", "seed"}
NOVA_MAX_SEED = 858_993_459


def input_image_problem(name: str, value: object) -> str | None:
    """Why ``value`` is not an input image Titan/Nova accept (base64, no transparency)."""
    img = decode_b64(value)
    if img is None:
        return f"{name} is not a base64 image"
    if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
        if img.convert("RGBA").getchannel("A").getextrema()[0] < 255:
            return f"{name} has transparent or translucent pixels"
    return None


def mask_problem(value: object) -> str | None:
    """Why ``value`` is not a usable mask: pure black (edit) and white only, some black."""
    img = decode_b64(value)
    if img is None:
        return "maskImage is not a base64 image"
    colours = {c for _, c in img.convert("RGB").getcolors(1 << 24) or []}
    if colours - {(0, 0, 0), (255, 255, 255)}:
        return "maskImage holds pixels other than pure black and white"
    if (0, 0, 0) not in colours:
        return "maskImage has no black pixel: nothing to change"
    return None


def aws_error(status: int, kind: str, message: str) -> Reply:
    """An error the way Bedrock's REST-JSON protocol sends it."""
    return Reply(
        status,
        {"message": message},
        {
            "x-amzn-ErrorType": f"{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/",
            "x-amzn-RequestId": "00000000-0000-0000-0000-000000000000",
        },
    )


class FakeBedrock(Recorder):
    def __init__(
        self,
        access_key: str = "AKIDEXAMPLE",
        secret_key: str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        session_token: str | None = None,
        region: str = "us-east-1",
        api_key: str | None = None,
    ) -> None:
        super().__init__()
        self.api_key = api_key  # a Bedrock API key, accepted as ``Authorization: Bearer``
        self.credentials = Credentials(access_key, secret_key, session_token)
        self.region = region
        self.verified = 0  # requests whose signature checked out
        self.app.router.add_post("/model/{model_id}/invoke", self._invoke)

    def providers(self, name: str = "bedrock", **extra: Any) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "base_url": self.url,
            "region": self.region,
            "access_key_id": self.credentials.access_key,
            "secret_access_key": self.credentials.secret_key,
        }
        if self.credentials.token:
            entry["session_token"] = self.credentials.token
        return {name: {**entry, **extra}}

    def bodies(self) -> list[dict[str, Any]]:
        return [s.json for s in self.requests if s.json is not None]

    # --- SigV4 ----------------------------------------------------------------------------
    def signature_problem(self, seen: Received) -> str | None:
        """Why the request's SigV4 signature is not valid, or None when it is."""
        if self.api_key and seen.headers.get("Authorization") == f"Bearer {self.api_key}":
            return None
        match = AUTH_RE.match(seen.headers.get("Authorization", ""))
        if match is None:
            return f"Authorization is not SigV4: {seen.headers.get('Authorization')!r:.80}"
        if match["key"] != self.credentials.access_key:
            return "UnrecognizedClientException"
        if (match["region"], match["service"]) != (self.region, "bedrock"):
            return f"scope {match['region']}/{match['service']}, expected {self.region}/bedrock"
        amz_date = seen.headers.get("X-Amz-Date", "")
        try:
            when = dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
        except ValueError:
            return f"X-Amz-Date {amz_date!r}"
        if abs((dt.datetime.now(dt.UTC) - when).total_seconds()) > 300 or not amz_date.startswith(
            match["date"]
        ):
            return "request time too skewed"
        signed = match["signed"].split(";")
        for required in ("host", "x-amz-date", "content-type"):
            if required not in signed:
                return f"{required} is not signed"
        if self.credentials.token and "x-amz-security-token" not in signed:
            return "x-amz-security-token is not signed"
        lowered = {k.lower(): v for k, v in seen.headers.items()}
        missing = [h for h in signed if h not in lowered]
        if missing:
            return f"signed headers not sent: {missing}"
        host = lowered["host"]
        request = AWSRequest(
            method=seen.method,
            url=f"http://{host}{seen.raw_path}",
            data=seen.body,
            headers={h: lowered[h] for h in signed if h != "host"},
        )
        request.context["timestamp"] = amz_date
        signer = SigV4Auth(self.credentials, "bedrock", self.region)
        canonical = signer.canonical_request(request)
        expected = signer.signature(signer.string_to_sign(request, canonical), request)
        if expected != match["sig"]:
            return "InvalidSignatureException"
        return None

    # --- InvokeModel ----------------------------------------------------------------------
    async def _invoke(self, request: web.Request) -> web.StreamResponse:
        seen = await self.record(request)
        problem = self.signature_problem(seen)
        if problem is not None:
            kind = problem if problem.endswith("Exception") else "InvalidSignatureException"
            message = (
                "The request signature we calculated does not match the signature you "
                f"provided. ({problem})"
            )
            reply = aws_error(403, kind, message)
            return await self.answer(request, seen, reply)
        self.verified += 1
        model = request.match_info["model_id"]
        problems: list[str] = []
        if "%3A" not in seen.raw_path and ":" in model:
            problems.append("model id ':' not percent-encoded in the path")
        body = self.expect_json(seen, problems)
        if "titan-image" in model or "nova-canvas" in model:
            problems += self._check_amazon(model, body)
        elif "stability." in model:
            problems += self._check_stability(body)
        else:
            missing = aws_error(404, "ResourceNotFoundException", "Model not found")
            return await self.answer(request, seen, missing)
        if problems:
            self.violations.extend(f"{model}: {p}" for p in problems)
            invalid = aws_error(400, "ValidationException", "; ".join(problems))
            return await self.answer(request, seen, invalid)
        scripted = self.scripted(model)
        if scripted is not None:
            return await self.answer(request, seen, scripted)
        if "stability." in model:
            return web.json_response(
                {"seeds": [42], "finish_reasons": [None], "images": [self._png(model, body, 0)]}
            )
        count = body.get("imageGenerationConfig", {}).get("numberOfImages", 1)
        images = [self._png(model, body, i) for i in range(count)]
        return web.json_response({"images": images, "error": None})

    def _png(self, model: str, body: dict[str, Any], i: int) -> str:
        fmt = "JPEG" if body.get("output_format") == "jpeg" else "PNG"
        return base64.b64encode(png(f"{model}:{i}:{len(self.requests)}", 32, fmt)).decode()

    @staticmethod
    def _check_amazon(model: str, body: dict[str, Any]) -> list[str]:
        problems: list[str] = []
        task = body.get("taskType")
        params_key = TASK_PARAMS.get(str(task))
        if params_key is None:
            return [f"taskType {task!r}"]
        if set(body) - {"taskType", params_key, "imageGenerationConfig"}:
            problems.append(f"unexpected keys {sorted(body)}")
        params = body.get(params_key)
        if not isinstance(params, dict):
            return [*problems, f"{params_key} missing"]
        config = body.get("imageGenerationConfig", {})
        if set(config) - CONFIG_KEYS:
            problems.append(f"imageGenerationConfig keys {sorted(config)}")
        n = config.get("numberOfImages", 1)
        if not isinstance(n, int) or not 1 <= n <= 5:
            problems.append(f"numberOfImages {n!r}")
        seed = config.get("seed")
        if (
            "nova" in model
            and seed is not None
            and not (isinstance(seed, int) and 0 <= seed <= NOVA_MAX_SEED)
        ):
            problems.append(f"seed {seed!r} outside 0..{NOVA_MAX_SEED}")
        if config.get("quality", "standard") not in ("standard", "premium"):
            problems.append(f"quality {config['quality']!r}")
        if "width" in config or "height" in config:
            w, h = config.get("width"), config.get("height")
            if "titan" in model and (w, h) not in TITAN_SIZES:
                problems.append(f"{w}x{h} is not a Titan size")
            if "nova" in model and not (
                isinstance(w, int)
                and isinstance(h, int)
                and w % 16 == 0
                and h % 16 == 0
                and 320 <= min(w, h)
                and max(w, h) <= 4096
                and w * h <= 4_194_304
                and max(w / h, h / w) <= 4
            ):
                problems.append(f"{w}x{h} breaks Nova's size rules")
        if task == "TEXT_IMAGE":
            if not isinstance(params.get("text"), str) or not params["text"]:
                problems.append("textToImageParams.text missing")
        elif task == "INPAINTING":
            if why := input_image_problem("inPaintingParams.image", params.get("image")):
                problems.append(why)
            if ("maskImage" in params) == ("maskPrompt" in params):
                problems.append("exactly one of maskImage / maskPrompt")
            if "maskImage" in params and (why := mask_problem(params["maskImage"])):
                problems.append(why)
        else:
            images = params.get("images")
            if not isinstance(images, list) or not 1 <= len(images) <= 5:
                problems.append("imageVariationParams.images must hold 1-5 images")
            else:
                for image in images:
                    if why := input_image_problem("imageVariationParams.images", image):
                        problems.append(why)
        return problems

    @staticmethod
    def _check_stability(body: dict[str, Any]) -> list[str]:
        problems: list[str] = []
        allowed = {
            "prompt",
            "mode",
            "aspect_ratio",
            "output_format",
            "seed",
            "negative_prompt",
            "image",
            "strength",
        }
        if set(body) - allowed:
            problems.append(f"unknown fields {sorted(set(body) - allowed)}")
        if not isinstance(body.get("prompt"), str) or not body["prompt"]:
            problems.append("prompt missing")
        mode = body.get("mode", "text-to-image")
        if mode == "image-to-image":
            if decode_b64(body.get("image")) is None or "strength" not in body:
                problems.append("image-to-image needs image and strength")
            if "aspect_ratio" in body:
                problems.append("aspect_ratio is text-to-image only")
        if body.get("output_format") not in (None, "png", "jpeg"):
            problems.append(f"output_format {body['output_format']!r}")
        return problems
