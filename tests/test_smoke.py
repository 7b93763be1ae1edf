import base64

import httpx
from live import live_gateway


def test_placeholder_generation_over_http(make_config) -> None:  # type: ignore[no-untyped-def]
    with live_gateway(make_config()) as gw:
        r = httpx.post(
            f"{gw.url}/v2/router/images/generations",
            json={
                "model": "placeholder/sketch",
                "prompt": "a fox",
                "response_format": "b64_json",
                "size": "64x64",
            },
        )
    assert r.status_code == 200, r.text
    raw = base64.b64decode(r.json()["data"][0]["b64_json"])
    assert raw.startswith(b"\x89PNG")
    assert r.headers["x-orq-model"] == "placeholder/sketch"
    assert len(r.headers["x-orq-trace-id"]) == 26
