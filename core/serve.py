"""``platform serve``: a trained model behind HTTP (FastAPI + uvicorn), for programs that are not Python.

Endpoints: ``GET /health``, ``GET /card`` (the run's model card), ``POST /predict`` with either
an upload in the task's input format (multipart: one file, or one file per part for inputs that
are folders, such as brain_seg's modalities) answered with the output file (several files come
as a zip), or a JSON body ``{"inputs": [...]}`` answered with JSON.

The model loads once. One worker thread runs predictions in order; requests wait in a bounded
queue: a full queue answers 429 and a request over ``timeout_s`` answers 503, each with a
one-line reason. Bad input answers 4xx with the CLI's one-line message, never a traceback.
The server binds to loopback by default, refuses a non-loopback bind without a token, and
checks ``Authorization: Bearer TOKEN`` when a token is set.
"""

import asyncio
import concurrent.futures
import dataclasses
import io
import ipaddress
import json
import re
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from .errors import PartialOutput, UserError, first_line, one_line, require
from .limits import DEFAULT_MAX_INPUT_MB, input_limit

LOOPBACK_NAMES = {"localhost", "ip6-localhost"}
PARTIAL_HEADER = "x-sigplex-partial"  # on a 200 whose outputs were written in part: the reason


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def jsonable(value: Any) -> Any:
    """Predictions as JSON: arrays and tensors become lists, dataclasses and frames dicts."""
    import numpy as np

    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if hasattr(value, "to_dict") and callable(value.to_dict):
        try:
            return jsonable(value.to_dict(orient="list"))
        except TypeError:
            return jsonable(value.to_dict())
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _safe_name(name: str | None, fallback: str) -> str:
    base = Path(name or "").name
    base = _SAFE.sub("_", base).lstrip(".")
    return base or fallback


def _safe_relative(name: str | None, fallback: str) -> Path:
    """A part's file name as a relative path below the upload folder: each folder kept (a DICOM study's
    series), every component made safe, nothing that climbs out (``..``, absolute paths)."""
    parts = [_SAFE.sub("_", p).lstrip(".") for p in (name or "").replace("\\", "/").split("/")]
    parts = [p for p in parts if p]
    return Path(*parts) if parts else Path(fallback)


class Service:
    """The model, its one worker thread and the queue bookkeeping behind the HTTP app."""

    def __init__(self, predictor, *, timeout_s: float = 60.0, queue_size: int = 8, card: dict | None = None,
                 max_input_mb: float = DEFAULT_MAX_INPUT_MB):
        self.predictor = predictor
        self.max_input_mb = float(max_input_mb)
        self.timeout_s = float(timeout_s)
        self.queue_size = int(queue_size)
        self.card = card or {}
        self.pending = 0
        self.served = 0
        self.worker = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="sigplex-predict")

    def _predict_upload(self, files: list[tuple[str, bytes]]) -> tuple[bytes, str, str, str]:
        """(answer bytes, media type, file name, what is missing when the outputs were written in part)."""
        from .outputs import check_outputs, write_outputs

        task, prepared = self.predictor.task, self.predictor.prepared
        with tempfile.TemporaryDirectory(prefix="sigplex-serve-") as tmp:
            tmp = Path(tmp)
            single = tmp / _safe_name(files[0][0], "input")
            if len(files) == 1:
                single.write_bytes(files[0][1])
            if len(files) == 1 and (task.input_kind != "folder" or task.is_input(single)):
                source = single  # one file, or one file the task takes on its own (brain_seg's 4D NIfTI)
            else:
                single.unlink(missing_ok=True)
                source = tmp / "input"
                source.mkdir()
                for i, (name, data) in enumerate(files):
                    target = source / _safe_relative(name, f"part{i}")
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(data)
            suffixes = tuple(task.output_suffixes)  # none declared (contract v1): the input's own suffix
            output = tmp / "out" / f"prediction{suffixes[0] if suffixes else ''.join(source.suffixes)}"
            written_expected = check_outputs(task, output, prepared, overwrite=True, source=source)
            partial = ""
            try:
                result = self.predictor.predict(source)
                try:
                    written = write_outputs(task, result, output, prepared, written_expected, source=source)
                except PartialOutput as exc:  # answered with what was written; a header says what is missing
                    written, partial = [Path(p) for p in exc.written], one_line(exc.reason).replace(f"{tmp}/", "")
            except UserError as exc:  # name the upload as the client sent it, not the server's temporary folder
                raise type(exc)(str(exc).replace(f"{tmp}/", "")) from exc
            if len(written) == 1:
                return written[0].read_bytes(), _media_type(written[0]), written[0].name, partial
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
                for path in written:
                    zf.write(path, arcname=path.name)
            return buf.getvalue(), "application/zip", "prediction.zip", partial

    def _predict_json(self, inputs: Any) -> Any:
        import numpy as np

        try:
            array = np.asarray(inputs, dtype=np.float32)
        except (TypeError, ValueError):
            raise UserError("inputs: expected a (nested) list of numbers") from None
        return jsonable(self.predictor.predict(array))

    def _limited(self, fn, *args):
        with input_limit(self.max_input_mb):  # the worker thread holds the server's input limit
            return fn(*args)

    async def run(self, fn, *args):
        """Run ``fn`` on the worker within the queue bound and the time limit."""
        from fastapi import HTTPException

        if self.pending >= self.queue_size + 1:
            raise HTTPException(429, detail=f"queue full ({self.queue_size} requests waiting); retry later")
        self.pending += 1
        try:
            loop = asyncio.get_running_loop()
            future = loop.run_in_executor(self.worker, self._limited, fn, *args)
            try:
                return await asyncio.wait_for(future, timeout=self.timeout_s)
            except asyncio.TimeoutError:
                raise HTTPException(503, detail=f"prediction took longer than {self.timeout_s:g} s") from None
        finally:
            self.pending -= 1
            self.served += 1


def _media_type(path: Path) -> str:
    name = path.name.lower()
    for suffix, media in ((".csv", "text/csv"), (".json", "application/json"), (".wav", "audio/wav"),
                          (".png", "image/png"), (".npy", "application/octet-stream")):
        if name.endswith(suffix):
            return media
    return "application/octet-stream"


def create_app(predictor, *, token: str | None = None, max_body_mb: float = 100.0, timeout_s: float = 60.0,
               queue_size: int = 8, card: dict | None = None, max_input_mb: float = DEFAULT_MAX_INPUT_MB):
    """The FastAPI app serving ``predictor`` (see the module docstring)."""
    require("fastapi", "serve", "platform serve")
    from fastapi import FastAPI, HTTPException, Request
    from fastapi.responses import JSONResponse, Response

    service = Service(predictor, timeout_s=timeout_s, queue_size=queue_size, card=card, max_input_mb=max_input_mb)
    limit = int(max_body_mb * 1024 * 1024)
    drain = DRAIN_FACTOR * limit
    app = FastAPI(title="sigplex", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.service = service

    @app.middleware("http")
    async def guard(request: Request, call_next):
        if token is not None and request.url.path != "/health":
            if request.headers.get("authorization", "") != f"Bearer {token}":
                return await _refuse(request, 401, "missing or wrong bearer token", drain)
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            return await _refuse(request, 413, f"request body is {int(length)} bytes; the limit is {max_body_mb:g} MB",
                                 drain)
        try:
            return await call_next(request)
        except _BodyTooLarge as exc:
            return await _refuse(request, 413, str(exc), drain)
        except Exception as exc:  # never a traceback to the client
            return JSONResponse({"error": f"internal error: {type(exc).__name__}: {first_line(exc)}"}, status_code=500)

    @app.exception_handler(HTTPException)
    async def http_error(request, exc: HTTPException):
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)

    @app.exception_handler(UserError)
    async def user_error(request, exc: UserError):
        return JSONResponse({"error": one_line(exc)}, status_code=getattr(exc, "http_status", 400))

    @app.get("/health")
    async def health():
        p = service.predictor
        return {"status": "ok", "plugin": p.plugin, "task": p.task.name,
                "model": getattr(getattr(p.config, "model", None), "name", None), "engine": getattr(p, "engine", "torch"),
                "pending": service.pending, "served": service.served}

    @app.get("/card")
    async def model_card():
        if not service.card:
            raise HTTPException(404, detail="this model has no card (shipped weights, or a run without card.json)")
        return service.card

    @app.post("/predict")
    async def predict(request: Request):
        body = await _read_body(request, limit)
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind == "application/json":
            try:
                payload = json.loads(body or b"null")
            except json.JSONDecodeError as exc:
                raise UserError(f"request body: not valid JSON ({exc.msg} at line {exc.lineno})") from None
            if not isinstance(payload, dict) or "inputs" not in payload:
                raise UserError('request body: expected a JSON object {"inputs": [...]}')
            return {"prediction": await service.run(service._predict_json, payload["inputs"])}
        if kind == "multipart/form-data":
            files = await _multipart_files(request, body)
            if not files:
                raise UserError("multipart body: expected at least one file part")
            data, media, name, partial = await service.run(service._predict_upload, files)
            headers = {"content-disposition": f'attachment; filename="{name}"'}
            if partial:  # e.g. the NIfTI without its DICOM SEG
                headers[PARTIAL_HEADER] = partial.encode("ascii", "backslashreplace").decode("ascii")
            return Response(data, media_type=media, headers=headers)
        raise UserError(f"content-type {kind or '(none)'}: expected multipart/form-data or application/json")

    return app


DRAIN_FACTOR = 4  # an oversized body is read and dropped up to this many times the limit before the answer


class _BodyTooLarge(Exception):
    """A body without a declared length passed the limit while it was read."""


async def _refuse(request, status: int, message: str, drain: int):
    """Answer ``status`` after reading and dropping what the client still sends (up to ``drain`` bytes), so
    that a client still sending reads the answer, not a broken pipe; past ``drain`` the connection closes."""
    from fastapi.responses import JSONResponse

    seen = 0
    try:
        async for chunk in request.stream():
            seen += len(chunk)
            if seen > drain:
                return JSONResponse({"error": message}, status_code=status, headers={"connection": "close"})
    except Exception:  # the stream was read already, or the client went away
        pass
    return JSONResponse({"error": message}, status_code=status)


async def _read_body(request, limit: int) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _BodyTooLarge(f"request body exceeds the limit of {limit / (1024 * 1024):g} MB")
        chunks.append(chunk)
    return b"".join(chunks)


async def _multipart_files(request, body: bytes) -> list[tuple[str, bytes]]:
    from starlette.datastructures import UploadFile
    from starlette.requests import Request

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, receive).form()
    except Exception as exc:
        raise UserError(f"multipart body: cannot be parsed ({type(exc).__name__})") from None
    files = []
    for key, value in form.multi_items():
        if isinstance(value, UploadFile):
            files.append((value.filename or key, await value.read()))
    return files


def serve(checkpoint=None, *, plugin: str | None = None, task: str | None = None, host: str = "127.0.0.1",
          port: int = 8000, token: str | None = None, max_body_mb: float = 100.0, timeout_s: float = 60.0,
          device: str = "cpu", engine: str = "torch", queue_size: int = 8,
          max_input_mb: float = DEFAULT_MAX_INPUT_MB) -> None:
    """Load the model once and serve it with uvicorn until interrupted."""
    require("uvicorn", "serve", "platform serve")
    import uvicorn

    from .loading import load_predictor

    if not is_loopback(host) and not token:
        raise UserError(f"--host {host}: refusing to serve beyond this machine without a token; "
                        "pass --token-env VAR naming an environment variable that holds one")
    predictor = load_predictor(checkpoint, plugin=plugin, task=task, device=device, engine=engine)
    card = (predictor.run.card if predictor.run is not None else None) or {}
    app = create_app(predictor, token=token, max_body_mb=max_body_mb, timeout_s=timeout_s, queue_size=queue_size,
                     card=card, max_input_mb=max_input_mb)
    print(f"serving {predictor.plugin}/{predictor.task.name} on http://{host}:{port} "
          f"(engine {engine}, token {'on' if token else 'off'})", flush=True)
    uvicorn.run(app, host=host, port=int(port), log_level="warning", access_log=False)
