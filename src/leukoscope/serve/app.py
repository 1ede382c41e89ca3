"""`leukoscope serve`: a FastAPI service and a one-page web app around one bundle."""

from __future__ import annotations

import threading
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

from fastapi import FastAPI, File, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException

from leukoscope.data.images import read_rgb
from leukoscope.scoring.bundle import Bundle
from leukoscope.errors import ImageError
from leukoscope.inference.predictor import Predictor

DEFAULT_MAX_UPLOAD_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_FILES = 64


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _safe_name(name: str | None) -> str:
    """A display name only: the last path component, never used to touch the file system."""
    return (name or "upload").replace("\\", "/").rsplit("/", 1)[-1][:200] or "upload"


def create_app(bundle: Bundle, max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES, max_files: int = DEFAULT_MAX_FILES) -> FastAPI:
    app = FastAPI(title="leukoscope", version=bundle.meta.get("leukoscope_version", ""), description=bundle.meta.get("intended_use", ""))
    predictor = Predictor(bundle)
    lock = threading.Lock()  # Grad-CAM hooks the model; one explanation or prediction at a time
    page = resources.files("leukoscope.serve").joinpath("static/index.html").read_text()

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'][1:])) or e['loc'][0]}: {e['msg'].lower()}" for e in exc.errors())
        return JSONResponse({"error": f"invalid request ({problems}); send images as multipart form data"}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": f"{request.method} {request.url.path}: {str(exc.detail).lower()}"}, status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"error": f"internal error: {type(exc).__name__}"}, status_code=500)

    def read_upload(upload: UploadFile) -> tuple[str, "np.ndarray"]:
        """The upload's display name and pixels; an ApiError (413 or 415) naming it when it cannot be used."""
        name = _safe_name(upload.filename)
        data = upload.file.read(max_upload_bytes + 1)
        if len(data) > max_upload_bytes:
            raise ApiError(413, f"{name}: larger than the {max_upload_bytes // (1024 * 1024)} MB upload limit")
        try:
            rgb = read_rgb(name, max_pixels=bundle.pipeline.config.max_pixels, data=data)
        except ImageError as exc:
            raise ApiError(413 if "too large" in exc.reason else 415, f"{name}: {exc.reason}") from None
        return name, rgb

    @app.middleware("http")
    async def limit_body(request: Request, call_next: Any) -> Response:
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > max_upload_bytes * max(1, max_files) + 1_000_000:
            return JSONResponse({"error": "request body too large"}, status_code=413)
        return await call_next(request)

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return page

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/model")
    def model_card() -> dict[str, Any]:
        return bundle.card()

    # Handlers that decode or run the model are plain functions: FastAPI runs them on its thread pool,
    # so the event loop keeps answering (/healthz among them) while a request is being computed.
    @app.post("/v1/predict")
    def predict(files: list[UploadFile] = File(...)) -> list[dict[str, Any]]:
        """One entry per upload, in order: a prediction, or status `error` with the reason. A batch
        with some bad files answers 200; one in which every file is bad answers the first error."""
        if len(files) > max_files:
            raise ApiError(413, f"at most {max_files} files per request")
        loaded: list[tuple[str, Any]] = []
        for f in files:
            try:
                loaded.append(read_upload(f))
            except ApiError as exc:
                loaded.append((_safe_name(f.filename), exc))
        good = [(name, rgb) for name, rgb in loaded if not isinstance(rgb, ApiError)]
        if not good:
            raise next(err for _, err in loaded)
        with lock:
            pred = predictor.predict_rgbs([rgb for _, rgb in good])
        rows = iter(predictor.rows([name for name, _ in good], pred))
        return [
            {"path": name, "status": "error", "error": rgb.message} if isinstance(rgb, ApiError) else {k: v for k, v in next(rows).items() if not k.startswith("_")}
            for name, rgb in loaded
        ]

    @app.post("/v1/explain")
    def explain(file: UploadFile = File(...), method: str = "both") -> Response:
        from leukoscope.explain.overlays import METHODS, explanation_panel, png_bytes

        if method not in METHODS:
            raise ApiError(422, f"method must be one of {', '.join(METHODS)}")
        _, rgb = read_upload(file)
        with lock:
            panel, _ = explanation_panel(bundle, rgb, method)
        return Response(png_bytes(panel), media_type="image/png")

    return app


def exposure_warning(host: str) -> str | None:
    """A warning when the service would listen beyond this machine: it has no authentication."""
    import ipaddress

    if host == "localhost":
        return None
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:
        pass  # a host name: assume it is reachable from elsewhere
    return f"warning: listening on {host}, reachable from other machines; the service has no authentication or TLS: put it behind the lab's authenticating proxy"


def serve(bundle: Bundle, host: str = "127.0.0.1", port: int = 8000, max_upload_mb: int = 20) -> None:
    import uvicorn

    uvicorn.run(create_app(bundle, max_upload_mb * 1024 * 1024), host=host, port=port, log_level="info")
