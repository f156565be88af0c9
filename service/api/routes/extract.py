"""Synchronous extraction: one document in, its `ExtractionResult` out (the pipeline runs in a thread)."""

import asyncio
from typing import Any

import anyio
from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from service.api.batcher import Batchers
from service.api.routes.uploads import document_size, read_body, read_upload
from service.deps import ExtractionCapacityDep, Services, ServicesDep
from service.errors import BadRequestError, DocextractError
from service.ingest.load import JsonDocument, parse_page_selection
from service.ingest.ocr import check_languages
from service.registry import MODEL_ID_PATTERN
from service.schemas import ExtractionResult, ExtractOptions, Problem

router = APIRouter(prefix="/v1", tags=["extract"])
Batching = tuple[Batchers, asyncio.AbstractEventLoop]  # the batchers and the loop they run on
MULTIPART = "multipart/form-data"


def inline_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON schema with its `$defs` references replaced by the definitions (OpenAPI cannot resolve
    `#/$defs/...` inside a request body)."""
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return resolve(definitions[node["$ref"].rsplit("/", 1)[-1]])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(value) for value in node]
        return node

    return resolve(schema)  # type: ignore[no-any-return]


REQUEST_BODY = {
    "required": True,
    "content": {
        MULTIPART: {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {"file": {"type": "string", "format": "binary"}},
            }
        },
        "application/json": {"schema": inline_schema(JsonDocument.model_json_schema())},
        "application/octet-stream": {
            "schema": {"type": "string", "format": "binary"},
            "description": "The document's bytes (any supported format) as the whole body.",
        },
    },
}


def query_options(
    model: str | None = Query(
        None,
        pattern=MODEL_ID_PATTERN,
        description="Model id (`default` or `mdl_...`); default: the active model.",
    ),
    ocr_lang: str | None = Query(
        None, pattern=r"^[A-Za-z_]+(\+[A-Za-z_]+)*$", description="Tesseract language(s), e.g. `eng+deu`."
    ),
    dpi: int | None = Query(None, ge=36, le=1200, description="Resolution PDF pages are rasterised at."),
    pages: str | None = Query(None, description="1-based page selection, e.g. `1-3,5`; default: all."),
) -> ExtractOptions:
    """The per-document options, from query parameters."""
    if pages is not None and pages.strip():
        parse_page_selection(pages)
    if ocr_lang is not None:
        check_languages(ocr_lang)
    return ExtractOptions(model=model, ocr_language=ocr_lang, dpi=dpi, pages=pages)


async def request_document(request: Request, limit: int) -> bytes:
    """The document of a request: the multipart field `file`, or else the whole body (the request's size
    is checked by `service.api.gate`, the document's here)."""
    if request.headers.get("content-type", "").startswith(MULTIPART):
        async with request.form(max_files=1) as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise BadRequestError("a multipart request needs the document in the field `file`")
            return await run_in_threadpool(read_upload, upload.file, document_size(limit, upload.filename))
    return await read_body(request, document_size(limit))


def serve_extraction(
    services: Services, data: bytes, options: ExtractOptions, batching: Batching | None = None
) -> ExtractionResult:
    """Blocking: one extraction as the API serves it: the model resolved once (the request keeps that
    runtime to its end), its model calls batched with `batching` (the process's micro-batcher for that
    runtime), the outcome counted in the metrics."""
    runtime = services.registry.use(options.model)
    options = options.model_copy(update={"model": runtime.model_id})  # type: ignore[attr-defined]
    if batching is not None:
        runtime = batching[0].wrap(runtime, batching[1])
    try:
        result = services.extract(data, options, services.settings, runtime)
    except DocextractError:
        services.metrics.observe_failure("extract")
        raise
    services.metrics.observe_result(result, "extract")
    return result


def extraction_json(
    services: Services, data: bytes, options: ExtractOptions, batching: Batching | None = None
) -> bytes:
    """Blocking: the extraction of one document as the JSON bytes of its `ExtractionResult`."""
    return serve_extraction(services, data, options, batching).model_dump_json().encode()


@router.post(
    "/extract",
    response_model=ExtractionResult,
    summary="Extract one document synchronously",
    openapi_extra={"requestBody": REQUEST_BODY},
    responses={
        400: {"model": Problem},
        404: {"model": Problem, "description": "No such model."},
        413: {"model": Problem},
        415: {"model": Problem},
        422: {"model": Problem},
        503: {"model": Problem, "description": "No model is available."},
    },
)
async def extract(
    services: ServicesDep,
    capacity: ExtractionCapacityDep,
    request: Request,
    options: ExtractOptions = Depends(query_options),
) -> ExtractionResult:
    """Words, entities, relations and key-value pairs of an upload: a multipart `file`, a JSON pages
    document (`{"pages": [{"width", "height", "image"?, "words": [{"text", "box", "line"?}]}]}`), or the
    raw bytes of a PDF or image as the body."""
    data = await request_document(request, services.settings.max_upload_bytes)
    batchers = capacity.batchers
    batching = (batchers, asyncio.get_running_loop()) if batchers is not None else None
    # `extract_concurrency` threads at most: less GIL contention
    body = await anyio.to_thread.run_sync(
        extraction_json, services, data, options, batching, limiter=capacity.limiter
    )
    # Already validated and serialised in the thread: the event loop only sends the bytes (a returned model
    # would be re-validated and serialised on the loop, stalling every other request meanwhile).
    return Response(body, media_type="application/json")  # type: ignore[return-value]
