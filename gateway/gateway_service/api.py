"""The API's shapes, declared once: what each route takes and what it answers.

The query parameters are pydantic models: a view reads its query with `Model.from_request`
(anything the model does not accept is a JSON 400, never a 500), and the OpenAPI document
(`openapi.py`) shows the same models' JSON Schema. The bodies the gateway answers are
declared here too, for the document; schemathesis (tests/test_gateway_fuzz.py) checks that
every answer fits them.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from werkzeug.datastructures import MultiDict

from mp3common.http import ApiError
from mp3common.jobs import State
from mp3common.options import describe

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20
#: Far past any real list, and small enough that (page - 1) * per_page, the number of
#: jobs skipped, stays a 64-bit integer as MongoDB needs it (the reference 500'd past it).
MAX_PAGE = 1_000_000


def _decimal(value: object) -> object:
    """A query value is text, and only ASCII digits make a number of it: not '²' (which
    str.isdigit() takes and int() refuses), '١٢', '+1', '1_000', ' 1' or '1.0'."""
    if isinstance(value, str):
        if not (value.isascii() and value.isdigit()) or len(value) > 18:
            raise ValueError("not a whole number")
        return int(value)
    return value


#: A whole number given in a query string.
QueryInt = Annotated[int, BeforeValidator(_decimal)]


class Query(BaseModel):
    """A route's query parameters. Unknown parameters are ignored; of a repeated one the
    first counts (as request.args.get does)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    #: For each field, the error code and message a bad or missing value gets.
    refusals: ClassVar[dict[str, tuple[str, str]]] = {}

    @classmethod
    def from_request(cls, args: MultiDict[str, str]) -> Self:
        try:
            return cls.model_validate(args.to_dict(flat=True))
        except ValidationError as exc:
            field = str(exc.errors()[0]["loc"][0])
            error, message = cls.refusals[field]
            raise ApiError(400, error, message) from None


class JobsQuery(Query):
    page: QueryInt = Field(1, ge=1, le=MAX_PAGE, description="Which page, from 1.")
    per_page: QueryInt = Field(
        DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE, description="Jobs per page."
    )

    refusals: ClassVar[dict[str, tuple[str, str]]] = {
        "page": ("invalid_page", f"page must be a whole number from 1 to {MAX_PAGE}."),
        "per_page": (
            "invalid_page",
            f"per_page must be a whole number from 1 to {MAX_PAGE_SIZE}.",
        ),
    }


class FidQuery(Query):
    fid: str = Field(
        min_length=1,
        pattern=r"\S",
        description=(
            "The fid the upload returned (or the job's mp3_fid). Anything that is not one "
            "of the caller's own, malformed ids included, is 404."
        ),
        examples=["6745a1b2c3d4e5f6a7b8c9d0"],
    )

    refusals: ClassVar[dict[str, tuple[str, str]]] = {
        "fid": ("missing_fid", "Say which file: ?fid=<the fid the upload returned>."),
    }


# --- what the gateway answers -------------------------------------------------------------

_OBJECT_ID = r"^[0-9a-f]{24}$"


class Error(BaseModel):
    """Every error: a code for programs and a message for people; some add fields."""

    model_config = ConfigDict(extra="allow")

    error: str = Field(description="A stable snake_case code.")
    message: str = Field(description="What happened and what to do.")


class JobOptions(BaseModel):
    """The options the job converts with, each filled in (mp3common.options)."""

    format: str = Field(description="The output format (GET /formats).")
    quality: str | None = Field(description="The format's quality; null for lossless ones.")
    start: float | None = Field(description="Trim: where it starts, in seconds.")
    end: float | None = Field(description="Trim: where it ends, in seconds.")
    normalize: float | None = Field(description="The loudness target in LUFS.")
    track: int | str | None = Field(description="The audio track: its number or language.")
    channels: Literal["mono", "stereo"] | None


class Job(BaseModel):
    """What the owner sees of one job (more fields may come; clients ignore the unknown)."""

    model_config = ConfigDict(extra="allow")

    fid: str = Field(pattern=_OBJECT_ID, description="The job's id: the uploaded video's.")
    filename: str | None
    size: int | None = Field(description="The upload's size in bytes.")
    state: State
    created_at: str | None = Field(json_schema_extra={"format": "date-time"})
    updated_at: str | None = Field(json_schema_extra={"format": "date-time"})
    options: JobOptions
    notes: list[str] = Field(description="What the owner should know of the options.")
    progress: float | None = Field(
        None,
        ge=0,
        le=100,
        description="Per cent converted (queued 0, done 100); null "
        "while converting until ffmpeg reports.",
    )
    eta_seconds: float | None = Field(None, description="While converting: seconds to go.")
    mp3_fid: str | None = Field(None, description="When done: the output's own id.")
    mp3_size: int | None = Field(None, description="When done: the output's size in bytes.")
    duration_seconds: float | None = Field(None, description="When done: the output's length.")
    copied: bool | None = Field(None, description="When done: the audio was copied as it was.")
    tags: dict[str, str] | None = Field(None, description="When done: the tags written.")
    cover: bool | None = Field(None, description="When done: it has a cover picture.")
    warning: str | None = Field(None, description="When done: e.g. the file looks cut off.")
    reason: str | None = Field(None, description="When failed or cancelled: why.")
    expires_at: str | None = Field(
        None,
        json_schema_extra={"format": "date-time"},
        description="When finished: when its output (done) or its video (failed, cancelled) "
        "is removed.",
    )
    expired: bool | None = Field(None, description="When finished: it has been removed.")
    status_url: str | None = Field(None, description="Where to ask for this job.")
    job_url: str | None = Field(None, description="The job as a resource (/jobs/<fid>).")
    download_url: str | None = Field(None, description="When done: where to get the output.")


class UploadAccepted(Job):
    state: Literal["queued"] = "queued"
    status_url: str
    job_url: str
    download_url: str


class JobList(BaseModel):
    jobs: list[Job] = Field(description="Newest first.")
    page: int
    per_page: int
    total: int = Field(description="How many jobs the caller has in all.")
    next: str | None = Field(description="The next page's URL, or null on the last page.")


class Health(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    status: Literal["ready"]
    checks: dict[str, Literal["ok", "unavailable"]]


class NotReady(Error):
    error: Literal["not_ready"]
    checks: dict[str, Literal["ok", "unavailable"]]


class Quality(BaseModel):
    name: str
    description: str


class OutputFormat(BaseModel):
    name: str
    label: str
    extension: str
    mime_type: str
    lossless: bool
    default_quality: str | None
    qualities: list[Quality]
    copied_from: list[str] = Field(description="Source codecs copied without re-encoding.")


class Catalog(BaseModel):
    """GET /formats: what a client may choose on upload (mp3common.options.describe)."""

    default_format: str
    formats: list[OutputFormat]
    options: dict[str, dict[str, Any]] = Field(
        description="Each option: its description, default, and values or range."
    )


class QuotaError(Error):
    """A quota reached: which, its numbers, and when it frees."""

    error: Literal["quota_exceeded"]
    quota: Literal["stored_bytes", "jobs_per_hour", "media_seconds"]
    limit: float
    used: int | None = Field(None, description="What the caller has used of it.")
    frees_at: str | None = Field(
        json_schema_extra={"format": "date-time"},
        description="When enough of it frees; null when waiting does not help.",
    )


def schema_models() -> list[type[BaseModel]]:
    return [Error, Job, UploadAccepted, JobList, Catalog, QuotaError, Health, Ready, NotReady]


def upload_form_schema() -> dict[str, Any]:
    """The multipart form of POST /upload: the file and the options, whose values are the
    catalog's (an empty field is one not given)."""
    catalog = describe()
    options = catalog["options"]
    qualities = list(dict.fromkeys(q["name"] for f in catalog["formats"] for q in f["qualities"]))
    choices = {
        "format": options["format"]["values"],
        "quality": qualities,
        "channels": options["channels"]["values"],
    }
    properties: dict[str, Any] = {
        "file": {
            "type": "string",
            "contentMediaType": "application/octet-stream",
            "description": "The video or audio file, judged by its content, not its name.",
        }
    }
    for name, option in options.items():
        field: dict[str, Any] = {"type": "string", "description": option["description"]}
        if name in choices:
            field["enum"] = [*choices[name], ""]
        properties[name] = field
    return {
        "type": "object",
        "required": ["file"],
        "properties": properties,
        "additionalProperties": False,
    }


def query_parameters(model: type[Query]) -> list[dict[str, Any]]:
    """The OpenAPI parameters of a query model, from its JSON Schema."""
    schema = model.model_json_schema()
    required = set(schema.get("required", ()))
    parameters = []
    for name, prop in schema["properties"].items():
        prop = dict(prop)
        description = prop.pop("description", None)
        prop.pop("title", None)
        parameter = {"name": name, "in": "query", "required": name in required, "schema": prop}
        if description:
            parameter["description"] = description
        parameters.append(parameter)
    return parameters
