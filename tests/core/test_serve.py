"""platform serve: health, card, JSON and upload predictions, auth, limits, queue, timeouts; a real server process."""
import asyncio
import io
import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from helpers import needs_example, run_cli

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")
pytestmark = needs_example


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("serve") / "run"
    done = run_cli("train", "--plugin", "example", "--max-steps", 3, "--out", out, "--set", "model.channels=4")
    assert done.returncode == 0, done.stderr
    return out


def _client(app):
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


def _app(run, **kw):
    import sigplex.core as sp
    from sigplex.core.serve import create_app

    card = json.loads((run / "card.json").read_text())
    return create_app(sp.load_run(run), card=card, **kw), sp.load_run(run)


def test_predict_json_upload_card_and_errors(run):
    app, ref = _app(run)
    x = np.random.default_rng(0).normal(size=(3, 64)).astype(np.float32)

    async def go():
        async with _client(app) as c:
            assert (await c.get("/health")).json()["plugin"] == "example"
            assert (await c.get("/card")).json()["task"] == "denoise"
            r = await c.post("/predict", json={"inputs": x.tolist()})
            assert r.status_code == 200
            assert np.abs(np.array(r.json()["prediction"]) - ref.predict(x)).max() < 1e-5
            buf = io.BytesIO()
            np.save(buf, x[0])
            r = await c.post("/predict", files={"file": ("x.npy", buf.getvalue())})
            assert r.status_code == 200 and np.load(io.BytesIO(r.content)).shape == (64,)
            bad = [await c.post("/predict", content=b"{not json", headers={"content-type": "application/json"}),
                   await c.post("/predict", json={"inputs": [["a", "b"]]}),
                   await c.post("/predict", json={"inputs": [[[[1.0]]]]}),
                   await c.post("/predict", json={"wrong": 1}),
                   await c.post("/predict", files={"file": ("x.npy", b"garbage")}),
                   await c.post("/predict", content=b"x", headers={"content-type": "text/plain"})]
            for r in bad:
                assert 400 <= r.status_code < 500, r.text
                assert "Traceback" not in r.text and len(r.json()["error"].splitlines()) == 1

    asyncio.run(go())


def test_token_body_limit_queue_and_timeout(run):
    app, _ = _app(run, token="s3cret", max_body_mb=0.001)

    async def go():
        async with _client(app) as c:
            assert (await c.get("/health")).status_code == 200  # health needs no token
            assert (await c.get("/card")).status_code == 401
            auth = {"authorization": "Bearer s3cret"}
            assert (await c.get("/card", headers=auth)).status_code == 200
            big = {"inputs": [[0.0] * 2000]}
            assert (await c.post("/predict", json=big, headers=auth)).status_code == 413

    asyncio.run(go())

    slow_app, _ = _app(run, queue_size=1, timeout_s=0.3)
    service = slow_app.state.service
    real = service._predict_json
    service._predict_json = lambda inputs: (time.sleep(0.6), real(inputs))[1]

    async def crowd():
        async with _client(slow_app) as c:
            rs = await asyncio.gather(*[c.post("/predict", json={"inputs": [[0.0] * 64]}) for _ in range(4)])
            codes = sorted(r.status_code for r in rs)
            assert 429 in codes and 503 in codes and 500 not in codes
            assert all(len(r.json()["error"].splitlines()) == 1 for r in rs)

    asyncio.run(crowd())


def test_non_loopback_bind_needs_a_token(run):
    out = run_cli("serve", "--checkpoint", run, "--host", "0.0.0.0", "--port", "1")
    assert out.returncode == 2 and "without a token" in out.stderr


@pytest.mark.slow
def test_real_server_process(run):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "SIGPLEX_TOKEN": "abc"}
    proc = subprocess.Popen([sys.executable, "-m", "sigplex.core.cli", "serve", "--checkpoint", str(run), "--port",
                             str(port), "--token-env", "SIGPLEX_TOKEN", "--max-body-mb", "1"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(120):
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.25)
        else:
            pytest.fail(f"server did not start: {proc.stderr.read() if proc.poll() is not None else ''}")
        auth = {"authorization": "Bearer abc"}
        r = httpx.post(f"{url}/predict", json={"inputs": [[0.5] * 64]}, headers=auth, timeout=30)
        assert r.status_code == 200 and len(r.json()["prediction"][0]) == 64
        assert httpx.post(f"{url}/predict", json={"inputs": [[0.5] * 64]}, timeout=30).status_code == 401
        # bodies over --max-body-mb, sent in full by a client that reads only afterwards: 413, never a broken pipe
        for declared in (True, False):
            for _ in range(4):
                assert _send_then_read(port, 3 << 20, declared).startswith(b"HTTP/1.1 413")
        assert httpx.get(f"{url}/health", timeout=5).status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _send_then_read(port: int, size: int, declared: bool) -> bytes:
    """POST ``size`` bytes on a raw socket (with a Content-Length, or chunked), all of it, then read the answer."""
    body = os.urandom(size)
    head = ("POST /predict HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer abc\r\n"
            "Content-Type: application/octet-stream\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        if declared:
            sock.sendall(f"{head}Content-Length: {size}\r\n\r\n".encode() + body)
        else:
            sock.sendall(f"{head}Transfer-Encoding: chunked\r\n\r\n".encode())
            for i in range(0, size, 1 << 16):
                part = body[i:i + (1 << 16)]
                sock.sendall(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            sock.sendall(b"0\r\n\r\n")
        return sock.recv(4096)
