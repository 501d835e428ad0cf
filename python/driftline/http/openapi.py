"""What the OpenAPI schema says beyond the handlers' signatures: error bodies, API keys, the inference bodies, and
the ``/docs`` UI served from files shipped in the package (no CDN: the page works on a machine with no internet).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import (
    Components,
    OpenAPIMediaType,
    OpenAPIType,
    Operation,
    Parameter,
    Reference,
    RequestBody,
    Schema,
    SecurityRequirement,
    SecurityScheme,
)
from litestar.static_files import create_static_files_router

from driftline import __version__
from driftline.drift.report import DriftReport
from driftline.experiments.report import ExperimentReport
from driftline.feedback.report import QualityReport
from driftline.protocol.types import ErrorResponse, InferenceRequest, InferenceResponse

__all__ = [
    "CHANGE",
    "CREATE",
    "DOCS_PATH",
    "KEYED",
    "KEYED_WHEN_CONFIGURED",
    "LIST",
    "QUERY",
    "READ",
    "REMOVE",
    "DriftReportOperation",
    "ExperimentReportOperation",
    "InferOperation",
    "OptionalBody",
    "QualityReportOperation",
    "errors",
    "infer_responses",
    "one_or_many",
    "openapi_config",
    "ui_router",
]

DOCS_PATH = "/docs"
_UI = Path(__file__).parent / "ui"
_UI_PATH = f"{DOCS_PATH}/ui"

_WHY = {
    400: "Bad request: the message names the input or field and what was expected",
    401: "No API key, or one that is not known",
    403: "The API key's role is too weak for this route",
    404: "Unknown model, version or alias",
    405: "Method not allowed (the Allow header lists the methods)",
    409: "A change the serving state refuses (the message says why)",
    413: "The request body is over the configured limit",
    503: "The model is not loaded, or its queue is full",
    504: "The request waited in the queue past its timeout and was never run",
}

# The server reads a key from either header (see driftline.security.keys); a route lists both as alternatives.
_SCHEMES = {
    "bearer": SecurityScheme(type="http", scheme="bearer", description="`Authorization: Bearer KEY`"),
    "apiKey": SecurityScheme(type="apiKey", name="X-API-Key", security_scheme_in="header"),
}
#: Routes that always need a key (the admin API).
KEYED: list[SecurityRequirement] = [{"bearer": []}, {"apiKey": []}]
#: Routes that need a key only once the server has keys (``{}``: open without them, as Triton's are).
KEYED_WHEN_CONFIGURED: list[SecurityRequirement] = [{}, {"bearer": []}, {"apiKey": []}]


def errors(*statuses: int) -> dict[int, ResponseSpec]:
    """The ``responses=`` of a handler: each status answers ``{"error": "..."}``."""
    return {s: ResponseSpec(ErrorResponse, description=_WHY[s], generate_examples=False) for s in statuses}


# What each kind of keyed (admin) route can answer besides its 200.
LIST = errors(401, 403)
QUERY = errors(400, 401, 403)
READ = errors(400, 401, 403, 404)
REMOVE = errors(400, 401, 403, 404, 409)
CREATE = errors(400, 401, 403, 409, 413)
CHANGE = errors(400, 401, 403, 404, 409, 413, 503)


def infer_responses() -> dict[int, ResponseSpec]:
    """Inference: the JSON response, or the binary extension's header + tensors; and every error it can answer."""
    return {
        200: ResponseSpec(InferenceResponse, description="The outputs (JSON)", generate_examples=False),
        **errors(400, 401, 403, 404, 413, 503, 504),
    }


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """Replace msgspec's ``$defs`` references by the definitions (the schema sits inside an operation).

    A tagged union's ``discriminator`` goes too: its mapping names the ``$defs`` being inlined away, and each
    member's schema still requires its own tag value.
    """
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inline(v, defs) for k, v in node.items() if k not in {"$defs", "discriminator"}}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


def _schema_of(struct: type[msgspec.Struct]) -> Any:
    schema = msgspec.json.schema(struct)
    return _inline(schema, schema.get("$defs", {}))


def _nullable_numbers(node: Any) -> Any:
    """JSON has no NaN or infinity: msgspec writes a non-finite float as null, so every number may be null."""
    if isinstance(node, list):
        return [_nullable_numbers(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _nullable_numbers(v) for k, v in node.items()}
    return {"anyOf": [out, {"type": "null"}]} if out.get("type") == "number" else out


def _add_200_media(operation: Operation, media_types: tuple[str, ...]) -> None:
    ok = (operation.responses or {}).get("200")
    content = getattr(ok, "content", None)
    if isinstance(content, dict):
        for media in media_types:
            content[media] = OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING))


@dataclass
class OptionalBody(Operation):
    """For a handler whose ``data`` is optional: Litestar marks every request body required."""

    def __post_init__(self) -> None:
        """Say the body may be left out."""
        if self.request_body is not None and not isinstance(self.request_body, Reference):
            self.request_body.required = False


@dataclass
class InferOperation(Operation):
    """The inference operation with the body the handler reads itself (it never lets Litestar parse it)."""

    def __post_init__(self) -> None:
        """Document the JSON request, the binary extension's body and its header-length header."""
        self.request_body = RequestBody(
            required=True,
            description=(
                "JSON tensors; or Triton's binary tensor extension: the JSON header (its length in "
                "Inference-Header-Content-Length) followed by the raw tensors"
            ),
            content={
                # A plain JSON Schema dict: Litestar writes it as is, msgspec generated it from the real struct.
                "application/json": OpenAPIMediaType(schema=_schema_of(InferenceRequest)),
                "application/octet-stream": OpenAPIMediaType(
                    schema=Schema(type=OpenAPIType.STRING, content_media_type="application/octet-stream")
                ),
            },
        )
        length = Parameter(
            name="Inference-Header-Content-Length",
            param_in="header",
            required=False,
            description="Binary extension: the byte length of the JSON header at the start of the body",
            schema=Schema(type=OpenAPIType.INTEGER, minimum=0),
        )
        self.parameters = [*(self.parameters or []), length]
        _add_200_media(self, ("application/octet-stream",))


def one_or_many(item: type[msgspec.Struct], key: str, description: str, **extra: Any) -> RequestBody:
    """The body of a route that reads it itself: one ``item`` object, or ``{key: [...]}`` of them (feedback labels,
    KPI events); ``extra`` adds to the item's schema what the struct cannot say. The item's schema must have no
    references to resolve."""
    one = {**msgspec.json.schema_components([item])[1][item.__name__], **extra}
    many = {
        "type": "object",
        "properties": {key: {"type": "array", "items": one, "minItems": 1}},
        "required": [key],
        "additionalProperties": False,
    }
    return RequestBody(
        required=True,
        description=description,
        content={"application/json": OpenAPIMediaType(schema={"oneOf": [one, many]})},  # type: ignore[arg-type]
    )


def _report_bodies(operation: Operation, report: type[msgspec.Struct]) -> None:
    """A report route's 200: ``report`` as JSON (NaN written as null), or an HTML page (``?format=html``)."""
    ok = (operation.responses or {}).get("200")
    content = getattr(ok, "content", None)
    if isinstance(content, dict):
        content["application/json"] = OpenAPIMediaType(schema=_nullable_numbers(_schema_of(report)))
    _add_200_media(operation, ("text/html",))


@dataclass
class DriftReportOperation(Operation):
    """The drift report: a DriftReport as JSON (a statistic of an empty side is NaN, so null), or an HTML page."""

    def __post_init__(self) -> None:
        """Document both bodies of the 200."""
        _report_bodies(self, DriftReport)


@dataclass
class QualityReportOperation(Operation):
    """The quality report: a QualityReport as JSON (an undefined metric is NaN, so null), or an HTML page."""

    def __post_init__(self) -> None:
        """Document both bodies of the 200."""
        _report_bodies(self, QualityReport)


@dataclass
class ExperimentReportOperation(Operation):
    """An experiment's report: an ExperimentReport as JSON (an unbounded interval's end is infinite, so null), or
    an HTML page (``?format=html`` or ``Accept: text/html``)."""

    def __post_init__(self) -> None:
        """Document both bodies of the 200."""
        _report_bodies(self, ExperimentReport)


def ui_router() -> Any:
    """The Swagger UI files shipped in ``driftline/http/ui``."""
    return create_static_files_router(path=_UI_PATH, directories=[_UI], include_in_schema=False)


def openapi_config() -> OpenAPIConfig:
    """The schema at ``/docs/openapi.json`` and Swagger UI at ``/docs``, its scripts and styles served from here."""
    swagger = SwaggerRenderPlugin(
        path="/",
        js_url=f"{_UI_PATH}/swagger-ui-bundle.js",
        css_url=f"{_UI_PATH}/swagger-ui.css",
        standalone_preset_js_url=f"{_UI_PATH}/swagger-ui-standalone-preset.js",
        favicon=f"<link rel='icon' type='image/png' href='{_UI_PATH}/favicon-32x32.png'>",
    )
    return OpenAPIConfig(
        title="driftline",
        version=__version__,
        path=DOCS_PATH,
        render_plugins=[swagger, JsonRenderPlugin()],
        components=Components(security_schemes=dict(_SCHEMES)),
        use_handler_docstrings=True,
    )
