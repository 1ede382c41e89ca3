"""`leukoscope serve`: a FastAPI service and a one-page web app around one bundle."""

from __future__ import annotations

import gc
import hashlib
import hmac
import os
import threading
import time
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException

from leukoscope.cells.ruler import AUTO, FIELD_OF_VIEW, parse_pixel_size, pixel_size_from_scale
from leukoscope.data.images import read_rgb
from leukoscope.errors import DataError, ImageError
from leukoscope.inference.pixel_scale import WHOLE_FIELD, resolve_pixel_scale, untold_pixel_scale
from leukoscope.inference.predictor import Predictor
from leukoscope.scoring.bundle import Bundle
from leukoscope.serve.audit import AuditLog
from leukoscope.serve.batching import Batcher
from leukoscope.serve.cases import CaseStore

DEFAULT_MAX_UPLOAD_BYTES = 20 * 1024 * 1024
AUDITED = ("path", "status", "error", "label", "confidence", "abstain", "abstain_reason", "ood", "ood_reason", "screen")  # what the audit log keeps of a result
DEFAULT_MAX_FILES = 64
MAX_FIELDS_PER_CASE = 300


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _safe_name(name: str | None) -> str:
    """A display name only: the last path component, never used to touch the file system."""
    return (name or "upload").replace("\\", "/").rsplit("/", 1)[-1][:200] or "upload"


def create_app(
    bundle: Bundle,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    max_files: int = DEFAULT_MAX_FILES,
    token: str | None = None,
    audit_log: AuditLog | None = None,
) -> FastAPI:
    """The service around one bundle. With `token`, every /v1/ call needs `Authorization: Bearer <token>`;
    with `audit_log`, every /v1/ call leaves one line in it."""
    app = FastAPI(title="leukoscope", version=bundle.meta.get("leukoscope_version", ""), description=bundle.meta.get("intended_use", ""))
    predictor = Predictor(bundle)
    lock = threading.Lock()  # Grad-CAM hooks the model; one explanation or one batch of predictions at a time
    batcher = Batcher(predictor, lock)
    # as many requests decode and preprocess at once as there are cores: more only contend for the GIL
    preparing = threading.BoundedSemaphore(os.cpu_count() or 2)
    page = resources.files("leukoscope.serve").joinpath("static/index.html").read_text()

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        request.scope.get("audit", {})["error"] = exc.message
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

    def read_upload(upload: UploadFile, audit: dict[str, Any]) -> tuple[str, "np.ndarray", bytes]:
        """The upload's display name, pixels and bytes; an ApiError (413 or 415) naming it when it cannot be used."""
        name = _safe_name(upload.filename)
        data = upload.file.read(max_upload_bytes + 1)
        audit.setdefault("uploads", []).append({"name": name, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)})
        if len(data) > max_upload_bytes:
            raise ApiError(413, f"{name}: larger than the {max_upload_bytes // (1024 * 1024)} MB upload limit")
        try:
            rgb = read_rgb(name, max_pixels=bundle.pipeline.config.max_pixels, data=data)
        except ImageError as exc:
            raise ApiError(413 if "too large" in exc.reason else 415, f"{name}: {exc.reason}") from None
        return name, rgb, data

    def scaled_predictor(pixel_size: str | None, rgbs: list[np.ndarray], default: str) -> tuple[Predictor, str]:
        """The predictor for one request's images at the pixel size asked for (`default` when none is:
        measured by then only where it can be), and the line saying where the scale came from."""
        if pixel_size not in (None, FIELD_OF_VIEW) and not bundle.cell_level:
            raise ApiError(422, f"pixel_size: {WHOLE_FIELD}")  # refused here: the bundle's path stays on the server
        try:
            size = parse_pixel_size(pixel_size or default)
        except DataError as exc:
            raise ApiError(422, f"pixel_size: {exc}") from None
        try:
            scale, note = resolve_pixel_scale(size, bundle, rgbs, required=pixel_size is not None, option="pixel_size")
        except DataError as exc:
            raise ApiError(422, str(exc)) from None
        return predictor.at_pixel_scale(scale), note

    @app.middleware("http")
    async def limit_body(request: Request, call_next: Any) -> Response:
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > max_upload_bytes * max(1, max_files) + 1_000_000:
            return JSONResponse({"error": "request body too large"}, status_code=413)
        return await call_next(request)

    weights_sha256 = bundle.weights_sha256 if audit_log is not None else ""  # hashed once, not on a request

    @app.middleware("http")  # registered last, so it runs first: refused and oversized calls are audited too
    async def guard_and_audit(request: Request, call_next: Any) -> Response:
        """The bearer token on /v1/, and one audit line per /v1/ call (the handlers add uploads and results)."""
        if not request.url.path.startswith("/v1/"):
            return await call_next(request)
        started = time.perf_counter()
        request.scope["audit"] = audit = {}
        if token is not None and not hmac.compare_digest(request.headers.get("authorization", "").encode(), f"Bearer {token}".encode()):
            audit["error"] = "missing or wrong token"
            response: Response = JSONResponse(
                {"error": "missing or wrong token: send the header 'Authorization: Bearer <token>'"}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
            )
        else:
            response = await call_next(request)
        if audit_log is not None:
            audit_log.write(
                {
                    "endpoint": f"{request.method} {request.url.path}",
                    "status": response.status_code,
                    "bundle_sha256": weights_sha256,
                    **audit,
                    "duration_ms": round(1000 * (time.perf_counter() - started), 1),
                }
            )
        return response

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return page

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:  # on the event loop itself: no wait for a pool thread under load
        return {"status": "ok"}

    @app.get("/v1/model")
    def model_card() -> dict[str, Any]:
        return bundle.card()

    # Handlers that decode or run the model are plain functions: FastAPI runs them on its thread pool,
    # so the event loop keeps answering (/healthz among them) while a request is being computed.
    @app.post("/v1/predict")
    def predict(request: Request, files: list[UploadFile] = File(...), pixel_size: str | None = Form(None)) -> list[dict[str, Any]]:
        """One entry per upload, in order: a prediction, or status `error` with the reason. A batch
        with some bad files answers 200; one in which every file is bad answers the first error.
        `pixel_size` as `predict --pixel-size` (default field, or the scale the images' red cells give where they
        say another magnification, with a `warning`): auto measures the request's images."""
        if len(files) > max_files:
            raise ApiError(413, f"at most {max_files} files per request")
        audit = request.scope.setdefault("audit", {})
        loaded: list[tuple[str, Any]] = []
        with preparing:
            for f in files:
                try:
                    loaded.append(read_upload(f, audit)[:2])
                except ApiError as exc:
                    loaded.append((_safe_name(f.filename), exc))
            good = [(name, rgb) for name, rgb in loaded if not isinstance(rgb, ApiError)]
            if not good:
                raise next(err for _, err in loaded)
            rgbs = [rgb for _, rgb in good]
            if pixel_size is None:
                try:
                    untold, warning = untold_pixel_scale(bundle, rgbs)
                except DataError as exc:
                    raise ApiError(422, str(exc)) from None
                scaled = predictor.at_pixel_scale(untold)
            else:
                scaled, _ = scaled_predictor(pixel_size, rgbs, FIELD_OF_VIEW)
                warning = ""
            units = [scaled.units(rgb) for rgb in rgbs]
        rows = iter(batcher.predict([name for name, _ in good], units))
        about_scale = {} if scaled.pixel_scale is None else {
            "pixel_scale": round(scaled.pixel_scale, 4),
            # what a client sends as pixel_size so that its next requests (and /v1/explain) cut at this scale
            "pixel_size_um": float(f"{pixel_size_from_scale(scaled.pixel_scale, bundle.training_red_cell_px):.5g}"),
        }
        if warning:
            about_scale["warning"] = warning
        answer = [
            {"path": name, "status": "error", "error": rgb.message} if isinstance(rgb, ApiError) else {**{k: v for k, v in next(rows).items() if not k.startswith("_")}, **about_scale}
            for name, rgb in loaded
        ]
        audit["results"] = [{k: row[k] for k in AUDITED if k in row} for row in answer]
        return answer

    cases = CaseStore()

    def case_fields(files: list[UploadFile], audit: dict[str, Any]) -> list[Any]:
        """The uploads as a case's fields; one that cannot be read becomes a field with its reason."""
        from leukoscope.case.analyse import FieldInput

        if len(files) > max_files:
            raise ApiError(413, f"at most {max_files} files per request")
        out = []
        for f in files:
            try:
                name, rgb, data = read_upload(f, audit)
                out.append(FieldInput(name, data, rgb))
            except ApiError as exc:
                out.append(FieldInput(_safe_name(f.filename), error=exc.message.split(": ", 1)[-1]))
        return out

    def case_answer(case_id: str, case: Any, audit: dict[str, Any]) -> dict[str, Any]:
        doc = {"id": case_id, **case.to_json()}
        audit["results"] = [{"case": case_id, "fields": len(case.fields), "cells": len(case.cells), "call": doc["summary"]["call"]["text"]}]
        return doc

    def stored_case(case_id: str) -> Any:
        case = cases.get(case_id)
        if case is None:
            raise ApiError(404, f"no case {case_id!r} (cases expire after {cases.max_age_s / 3600:.0f} h, or when {cases.max_cases} newer ones exist)")
        return case

    def grow_case(case: Any, files: list[UploadFile], audit: dict[str, Any], fields: list[Any] | None = None) -> None:
        if len(case.fields) + len(files) > MAX_FIELDS_PER_CASE:
            raise ApiError(413, f"a case holds at most {MAX_FIELDS_PER_CASE} fields; it has {len(case.fields)}")
        if fields is None:
            with preparing:
                fields = case_fields(files, audit)
        case.add(fields, model_lock=lock)

    @app.post("/v1/cases")
    def new_case(request: Request, files: list[UploadFile] = File(...), name: str = Form(""), pixel_size: str | None = Form(None)) -> dict[str, Any]:
        """A new case from many fields: case.json with the case's `id`; crops at /v1/cases/{id}/cells/{n}.png.
        `pixel_size` as `case --pixel-size` (default auto): the scale is measured on these first fields
        and kept for the fields added later (one patient, one microscope)."""
        from leukoscope.case.analyse import Case

        audit = request.scope.setdefault("audit", {})
        with preparing:
            fields = case_fields(files, audit)
            readable = [f.rgb for f in fields if f.rgb is not None]
            scaled, note = scaled_predictor(pixel_size, readable, AUTO) if readable else (predictor, "")
        case = Case(name.strip()[:100] or "case", scaled, pixel_scale_note=note)
        grow_case(case, files, audit, fields)
        return case_answer(cases.add(case), case, audit)

    @app.post("/v1/cases/{case_id}/fields")
    def add_fields(case_id: str, request: Request, files: list[UploadFile] = File(...)) -> dict[str, Any]:
        """More fields for a case (the page sends a few at a time, so the gallery grows as they are processed)."""
        audit = request.scope.setdefault("audit", {})
        case = stored_case(case_id)
        grow_case(case, files, audit)
        return case_answer(case_id, case, audit)

    @app.get("/v1/cases/{case_id}")
    def get_case(case_id: str, request: Request) -> dict[str, Any]:
        return case_answer(case_id, stored_case(case_id), request.scope.setdefault("audit", {}))

    @app.get("/v1/cases/{case_id}/cells/{number}.png")
    def cell_crop(case_id: str, number: int) -> Response:
        case = stored_case(case_id)
        if not 0 <= number < len(case.crops):
            raise ApiError(404, f"case {case_id} has no cell {number} ({len(case.crops)} cells)")
        return Response(case.crops[number], media_type="image/png")

    @app.get("/v1/cases/{case_id}/fields/{number}.jpg")
    def field_overview(case_id: str, number: int) -> Response:
        case = stored_case(case_id)
        if not 0 <= number < len(case.overviews) or case.overviews[number] is None:
            raise ApiError(404, f"case {case_id} has no readable field {number}")
        return Response(case.overviews[number], media_type="image/jpeg")

    @app.get("/v1/cases/{case_id}/report.html", response_class=HTMLResponse)
    def case_report(case_id: str) -> str:
        from leukoscope.case.report import render_html

        return render_html(stored_case(case_id))

    @app.post("/v1/explain")
    def explain(request: Request, file: UploadFile = File(...), method: str = "both", pixel_size: str | None = Form(None)) -> Response:
        """The explanation panel of one image; `pixel_size` as `/v1/predict`'s (auto needs 3 images: give µm)."""
        from leukoscope.explain.overlays import METHODS, explanation_panel, png_bytes

        if method not in METHODS:
            raise ApiError(422, f"method must be one of {', '.join(METHODS)}")
        audit = request.scope.setdefault("audit", {})
        _, rgb, _ = read_upload(file, audit)
        scaled, _ = scaled_predictor(pixel_size, [rgb], FIELD_OF_VIEW)
        with lock:
            panel, info = explanation_panel(bundle, rgb, method, scaled.pixel_scale)
        audit["results"] = [{k: v for k, v in info.items() if k in AUDITED}]
        return Response(png_bytes(panel), media_type="image/png")

    return app


def beyond_this_machine(host: str) -> bool:
    """Whether a listening address is reachable from other machines (a host name is assumed to be)."""
    import ipaddress

    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


def exposure_warning(host: str, token: bool = False) -> str | None:
    """A warning when the service would listen beyond this machine: no TLS, and without a token no authentication."""
    if not beyond_this_machine(host):
        return None
    if token:
        return f"warning: listening on {host}, reachable from other machines; the service has no TLS, so the token travels in clear: put it behind the lab's TLS proxy"
    return f"warning: listening on {host}, reachable from other machines; the service has no authentication or TLS: put it behind the lab's authenticating proxy"


def serve(
    bundle: Bundle,
    host: str = "127.0.0.1",
    port: int = 8000,
    max_upload_mb: int = 20,
    token: str | None = None,
    audit_log: str | Path | None = None,
) -> None:
    import uvicorn

    log = AuditLog(audit_log) if audit_log else None
    app = create_app(bundle, max_upload_mb * 1024 * 1024, token=token, audit_log=log)
    # the model, torch and the libraries are here for good: keep them out of the collector's full
    # passes, which otherwise stall every request, /healthz included, once the load begins
    gc.collect()
    gc.freeze()
    try:
        uvicorn.run(app, host=host, port=port, log_level="info")
    finally:
        if log is not None:
            log.close()
