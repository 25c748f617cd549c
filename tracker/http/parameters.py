"""Query parameters: each route's are one pydantic model, a `Query`, which both parses the
request and writes the route's OpenAPI parameters (http/openapi.py), so the two cannot disagree.

A field's `Parameter` says how its text becomes a value and what the document says it takes; a
text it refuses is a 400 `invalid_parameter` naming the first such field, as every route has
always answered. Parameters the route does not take are ignored (`?token=` is read by auth.py).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Self

import orjson
from aiohttp import web
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    ValidationError,
    ValidationInfo,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

from tracker.http.errors import ApiError

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_BIGINT = 2**63 - 1


@dataclass(frozen=True, slots=True, eq=False)
class Parameter:
    """How one query parameter's text becomes its value, and what the document says it takes."""

    read: Callable[[str], object]  # the value, or None: a text this parameter refuses
    schema: dict[str, Any]  # its OpenAPI schema (a field's default is added from the model)
    problem: str = ""  # why a text was refused, for people: a template of {name} and {raw}

    def __get_pydantic_core_schema__(self, _: object, __: GetCoreSchemaHandler) -> CoreSchema:
        """Parsed by `read` alone, whatever the field's annotation says (it types the value)."""
        return core_schema.with_info_plain_validator_function(self._validate)

    def __get_pydantic_json_schema__(
        self, _: CoreSchema, __: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return dict(self.schema)

    def _validate(self, raw: object, info: ValidationInfo) -> object:
        value = self.read(raw) if isinstance(raw, str) else None
        if value is None:
            problem = self.problem.format(name=info.field_name, raw=raw)
            raise PydanticCustomError("invalid_parameter", "{problem}", {"problem": problem})
        return value


class Query(BaseModel):
    """A route's query parameters; this base has none."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    @classmethod
    def of(cls, request: web.Request) -> Self:
        """The request's parameters, parsed; a 400 `invalid_parameter` for the first bad one."""
        return cls.parse(cls.given(request))

    @classmethod
    def given(cls, request: web.Request) -> dict[str, str]:
        """Each parameter's text; of one given twice, the first (as `query.get` reads it)."""
        return {name: request.query[name] for name in cls.model_fields if name in request.query}

    @classmethod
    def parse(cls, given: dict[str, str]) -> Self:
        try:
            return cls.model_validate(given)
        except ValidationError as refused:
            first = refused.errors()[0]
            raise invalid_parameter(str(first["loc"][0]), first["msg"]) from None

    @classmethod
    def parameters(cls) -> list[dict[str, Any]]:
        """The route's OpenAPI query parameters, in the order the model declares them."""
        properties = cls.model_json_schema()["properties"] if cls.model_fields else {}
        described = []
        for name, schema in properties.items():
            schema.pop("title", None)
            description = schema.pop("description", "")
            if "default" in schema and schema["default"] is None:
                del schema["default"]  # None is "not given": no value to document
            described.append(
                {
                    "name": name,
                    "in": "query",
                    "required": False,
                    "schema": schema,
                    "description": description,
                }
            )
        return described


def invalid_parameter(field: str, message: str) -> ApiError:
    return ApiError(400, "invalid_parameter", message, [{"field": field, "problem": message}])


def whole_number(raw: str) -> int | None:
    """ASCII digits only (str.isdigit also takes '²', which int() refuses), within bigint."""
    if raw.isascii() and raw.isdigit() and len(raw) <= 19 and int(raw) <= MAX_BIGINT:
        return int(raw)
    return None


def _limit(raw: str) -> int | None:
    limit = whole_number(raw)
    return limit if limit is not None and 1 <= limit <= MAX_LIMIT else None


def _seconds(raw: str) -> float | None:
    try:
        seconds = float(raw)
    except ValueError:
        return None
    return seconds if 0 <= seconds < 10**9 else None  # also refuses nan and inf


FOREIGN_CURSOR = "cursor is not one this server issued; use next_cursor as given"


def _cursor(raw: str) -> object:
    """What a cursor resumes after, decoded but not yet typed (http/paging.py types it against
    the listing's keyset). `{"after": null}` is not one this server issues, and would otherwise
    read as the first page."""
    try:
        return orjson.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))["after"]
    except (binascii.Error, ValueError, TypeError, KeyError):
        return None


def choice(values: Sequence[str]) -> Parameter:
    """One of `values`, as given."""
    return Parameter(
        lambda raw: raw if raw in values else None,
        {"type": "string", "enum": list(values)},
        f"{{name}} must be one of {', '.join(values)}; got {{raw!r}}",
    )


TEXT = Parameter(lambda raw: raw, {"type": "string"})
POSITION = Parameter(
    whole_number,
    {"type": "integer", "minimum": 0, "maximum": MAX_BIGINT},
    "{name} must be a log position (a whole number >= 0), got {raw!r}",
)
SECONDS = Parameter(
    _seconds,
    {"type": "number", "minimum": 0, "exclusiveMaximum": 10**9},
    "{name} must be a number of seconds >= 0; got {raw!r}",
)
# The two every paginated route takes, last (as in the document since the start).
Limit = Annotated[
    int,
    Parameter(
        _limit,
        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
        f"{{name}} must be a whole number from 1 to {MAX_LIMIT}, got {{raw!r}}",
    ),
    Field(description="page size"),
]
Cursor = Annotated[
    object,
    Parameter(_cursor, {"type": "string"}, FOREIGN_CURSOR),
    Field(description="next_cursor from the previous page"),
]
After = Annotated[int, POSITION, Field(description="a log position")]
AppId = Annotated[str | None, TEXT, Field(description="application id")]


class PageQuery(Query):
    """A page of a list that has no filters."""

    limit: Limit = DEFAULT_LIMIT
    cursor: Cursor = None
