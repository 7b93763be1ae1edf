"""A fake Vertex AI: ``projects/{p}/locations/{r}/publishers/google/models/{m}:predict`` (Imagen
generation and mask editing) and ``:generateContent``, bearer tokens, express mode with
``x-goog-api-key``, and an OAuth token endpoint (``/token``) that verifies the signed JWT
assertion (RFC 7523) google-auth sends for a service account. Each exchange mints a new token
(the first is ``fake.token``) that lives ``lifetimes`` seconds (default 3599); ``token_gate``,
when set, holds answers until it opens. ``GET /`` stands in for the GCE metadata server's
probe (google-auth asks ``http://$GCE_METADATA_IP`` whether it runs on Google Cloud) and
answers "not here", counting ``metadata_probes``.

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with FakeVertex(public_key=key.public_key()) as fake:
        config = make_config(providers=fake.providers(credentials=fake.service_account(key)))
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from collections import deque
from typing import Any

from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from fakes.core import Recorder
from fakes.google import check_generate_content, check_predict, gemini_success, predict_success
from imagekit import expect_image

SCOPE = "https://www.googleapis.com/auth/cloud-platform"
GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
EDIT_MODES = {
    "EDIT_MODE_INPAINT_INSERTION",
    "EDIT_MODE_INPAINT_REMOVAL",
    "EDIT_MODE_OUTPAINT",
    "EDIT_MODE_BGSWAP",
}


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def check_edit(doc: dict[str, Any], problems: list[str]) -> None:
    instance = (doc.get("instances") or [{}])[0]
    refs = instance.get("referenceImages")
    if not isinstance(refs, list) or len(refs) != 2:
        problems.append("mask editing needs exactly two referenceImages (RAW and MASK)")
        return
    by_type = {r.get("referenceType"): r for r in refs if isinstance(r, dict)}
    raw, mask = by_type.get("REFERENCE_TYPE_RAW"), by_type.get("REFERENCE_TYPE_MASK")
    if raw is None or mask is None:
        problems.append(f"reference types {sorted(by_type)}")
        return
    if len({raw.get("referenceId"), mask.get("referenceId")}) != 2:
        problems.append("referenceId values must be unique")
    raw_img = expect_image(raw.get("referenceImage", {}).get("bytesBase64Encoded"), "raw", problems)
    mask_img = expect_image(
        mask.get("referenceImage", {}).get("bytesBase64Encoded"), "mask", problems
    )
    if (mask.get("maskImageConfig") or {}).get("maskMode") != "MASK_MODE_USER_PROVIDED":
        problems.append("maskImageConfig.maskMode must be MASK_MODE_USER_PROVIDED")
    if raw_img is not None and mask_img is not None:
        if raw_img.size != mask_img.size:
            problems.append(f"mask size {mask_img.size} != image size {raw_img.size}")
        if mask_img.mode != "L":
            problems.append(f"mask mode {mask_img.mode}, expected grayscale")
    if (doc.get("parameters") or {}).get("editMode") not in EDIT_MODES:
        problems.append(f"editMode {(doc.get('parameters') or {}).get('editMode')!r}")


class FakeVertex(Recorder):
    def __init__(
        self,
        project: str = "proj-1",
        region: str = "us-central1",
        token: str = "ya29.fake-token",
        public_key: rsa.RSAPublicKey | None = None,
        api_key: str = "vertex-express-key",
    ) -> None:
        super().__init__()
        self.project, self.region, self.token = project, region, token
        self.public_key = public_key
        self.api_key = api_key
        self.token_requests = 0  # answered exchanges
        self.token_arrivals = 0  # exchanges received (answered or held at the gate)
        self.issued: list[str] = []
        self.lifetimes: deque[int] = deque()
        self.token_gate: threading.Event | None = None
        self.metadata_probes = 0
        base = "/v1/projects/{project}/locations/{region}/publishers/google/models/{target}"
        self.app.router.add_post(base, self._handle)
        self.app.router.add_post("/v1/publishers/google/models/{target}", self._handle)
        self.app.router.add_post("/token", self._token)
        self.app.router.add_get("/", self._metadata_probe)

    def providers(self, **extra: Any) -> dict[str, Any]:
        entry = {"project_id": self.project, "region": self.region, "base_url": self.url}
        return {"vertex": {**entry, **extra}}

    def service_account(self, key: rsa.RSAPrivateKey) -> dict[str, str]:
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return {
            "type": "service_account",
            "client_email": "gate@proj-1.iam.gserviceaccount.com",
            "private_key_id": "kid-1",
            "private_key": pem,
            "token_uri": self.url + "/token",
        }

    async def _metadata_probe(self, request: web.Request) -> web.Response:
        """Not a metadata server: a metadata server answers with ``Metadata-Flavor: Google``."""
        self.metadata_probes += 1
        if request.headers.get("Metadata-Flavor") != "Google":
            self.violations.append("metadata probe without Metadata-Flavor: Google")
        return web.Response(status=404, text="not a metadata server")

    async def _token(self, request: web.Request) -> web.Response:
        self.token_arrivals += 1
        if self.token_gate is not None:
            opened = await asyncio.to_thread(self.token_gate.wait, 30)
            assert opened, "token gate never opened"
        self.token_requests += 1
        form = await request.post()
        problems: list[str] = []
        if form.get("grant_type") != GRANT:
            problems.append(f"grant_type {form.get('grant_type')!r}")
        else:
            self._check_assertion(str(form.get("assertion", "")), problems)
        if problems:
            self.violations.extend(f"/token: {p}" for p in problems)
            return web.json_response({"error": "invalid_grant"}, status=400)
        token = self.token if not self.issued else f"{self.token}.{len(self.issued)}"
        self.issued.append(token)
        lifetime = self.lifetimes.popleft() if self.lifetimes else 3599
        return web.json_response(
            {"access_token": token, "expires_in": lifetime, "token_type": "Bearer"}
        )

    def _check_assertion(self, assertion: str, problems: list[str]) -> None:
        try:
            head, claims_b64, sig = assertion.split(".")
            header = json.loads(_unb64url(head))
            claims = json.loads(_unb64url(claims_b64))
            assert self.public_key is not None
            self.public_key.verify(
                _unb64url(sig),
                f"{head}.{claims_b64}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except (ValueError, InvalidSignature, AssertionError):
            problems.append("assertion is not a JWT signed by the service account")
        else:
            if header.get("alg") != "RS256" or header.get("kid") != "kid-1":
                problems.append(f"JWT header {header}")
            # the documented audience, whatever URL the assertion is posted to:
            # https://developers.google.com/identity/protocols/oauth2/service-account#httprest
            if claims.get("scope") != SCOPE or claims.get("aud") != GOOGLE_TOKEN_URI:
                problems.append(f"JWT claims {claims}")
            if not claims.get("iat") <= time.time() + 5 < claims.get("exp"):
                problems.append("JWT is not currently valid")

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        model, _, method = request.match_info["target"].partition(":")
        received = await self.record(request, key=model)
        problems: list[str] = []
        express = "project" not in request.match_info
        if express:
            if request.headers.get("x-goog-api-key") != self.api_key:
                problems.append("express mode without the x-goog-api-key")
        else:
            if request.match_info["project"] != self.project:
                problems.append(f"project {request.match_info['project']!r}")
            if request.match_info["region"] != self.region:
                problems.append(f"location {request.match_info['region']!r}")
            auth = request.headers.get("Authorization")
            if auth not in {f"Bearer {t}" for t in [self.token, *self.issued]}:
                problems.append(f"Authorization is {auth!r}")
        doc = self.expect_json(received, problems)
        if method == "generateContent":
            check_generate_content(doc, problems)
            return await self.respond(request, received, problems, gemini_success)
        if method != "predict":
            problems.append(f"unknown method {method!r}")
        check_predict(doc, problems, vertex=True)
        if "capability" in model:
            check_edit(doc, problems)
        return await self.respond(request, received, problems, lambda: predict_success(doc))
