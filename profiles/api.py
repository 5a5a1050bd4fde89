"""Read-only HTTP API over the published warehouse for marketing tools that pull.

Segments, their members after the suppression chain (keyset pagination on ``profile_id``, so
paging is stable and complete), changes since an export, and profile lookup by id or by email /
phone. Emails and phones arrive in a POST body - never in a URL that lands in access logs - and
are normalised and SHA-256-hashed on the way in; the lookup compares hashes against the identity
graph. A URL that carries one anyway is refused, requests are logged by route template, never by
URL, and validation errors name the field without echoing its value. No endpoint writes: the
published file is attached read-only.

One read-only connection per process, re-opened when a publication swaps the file (its inode,
size or mtime changes); per-publication results (a segment's members, identifier hashes) are
materialised once in memory and dropped with the connection.
"""

# No "from __future__ import annotations": FastAPI must see the endpoint annotations built
# inside create_app (page-size limits from configuration) as objects, not strings.

import base64
import binascii
import hashlib
import hmac
import json
import logging
import math
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Self
from urllib.parse import parse_qsl

import duckdb
import yaml
from fastapi import Depends, FastAPI, HTTPException, Query, Request, Security
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cdp.settings import DataPaths, config_dir
from identity.normalise import normalise_email_value, normalise_phone_value
from profiles.export import (
    default_config_path,
    member_rows_sql,
    previous_export,
    safe_run_id,
    sql_path,
)
from profiles.hashing import sha256_hex
from profiles.published import (
    PUBLISHED,
    MissingTableError,
    open_published,
    publication_run_id,
    published_tables,
    require_tables,
)
from profiles.segments import (
    NAME_PATTERN,
    Segment,
    SegmentError,
    available_segments,
    load_config,
)
from profiles.suppression import suppress

log = logging.getLogger(__name__)
access_log = logging.getLogger(f"{__name__}.access")

API_KEYS_ENV = "CDP_API_KEYS"
# Path and query patterns are checked by pydantic's Rust regex, whose "$" is the end of the text.
SEGMENT_NAME = rf"^{NAME_PATTERN}$"
RUN_ID = r"^[A-Za-z0-9_:+-][A-Za-z0-9_.:+-]{0,119}$"
PROFILE_ID = r"^[A-Za-z0-9_.:-]{1,128}$"


class ApiConfigError(RuntimeError):
    """The API cannot start safely (no keys, unreadable configuration)."""


@dataclass(frozen=True)
class ApiSettings:
    key_hashes: frozenset[str]
    default_page: int = 100
    max_page: int = 10_000
    members_max_age: float = 900.0

    @classmethod
    def load(cls, path: Path) -> Self:
        """Keys from ``$CDP_API_KEYS`` (hashed at once) and SHA-256 digests in ``api.yml``."""
        raw = (yaml.safe_load(path.read_text()) if path.exists() else None) or {}
        hashes = {str(h).lower() for h in raw.get("key_sha256") or []}
        hashes |= {sha256_hex(k.strip()) for k in os.environ.get(API_KEYS_ENV, "").split(",")
                   if k.strip()}
        if not hashes:
            raise ApiConfigError(
                f"no API keys configured: set {API_KEYS_ENV} or key_sha256 in {path}")
        pages = raw.get("page_size") or {}
        return cls(frozenset(hashes), int(pages.get("default", cls.default_page)),
                   int(pages.get("max", cls.max_page)),
                   float(raw.get("members_max_age_seconds", cls.members_max_age)))

    def accepts(self, key: str) -> bool:
        digest = sha256_hex(key)
        return any(hmac.compare_digest(digest, known) for known in self.key_hashes)


class Warehouse:
    """The process's read-only view of the publication, swapped when the file is replaced."""

    def __init__(self, published_db: Path, exports_dir: Path, max_age: float) -> None:
        self.published_db = published_db
        self.exports_dir = exports_dir
        self.max_age = max_age
        self._lock = threading.RLock()  # a build may ensure another build first
        self._con: duckdb.DuckDBPyConnection | None = None
        self._stamp: tuple[int, int, int] | None = None
        self._built: dict[str, float] = {}

    def _connection(self) -> duckdb.DuckDBPyConnection:
        """Call with the lock held: the current connection, re-opened after a swap."""
        try:
            stat = self.published_db.stat()
        except FileNotFoundError:
            raise HTTPException(503, "no publication yet: run the pipeline") from None
        stamp = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        if self._con is None or stamp != self._stamp:
            self._con, self._stamp, self._built = open_published(self.published_db), stamp, {}
            self._con.execute("SET preserve_insertion_order = true")  # paging relies on it
            log.info("opened publication %s", publication_run_id(self._con))
        return self._con

    def cursor(self, key: str | None = None,
               build: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
               ) -> duckdb.DuckDBPyConnection:
        """A cursor on the current publication, after ``build`` ran for it under ``key`` -
        once per publication, and again after ``max_age`` seconds, since frequency caps and
        cool-downs move with the clock."""
        with self._lock:
            con = self._connection()
            if key is not None and build is not None and (
                    time.monotonic() - self._built.get(key, -math.inf) > self.max_age):
                build(con)
                self._built[key] = time.monotonic()
            return con.cursor()


# ------------------------------------------------------------------------------ responses


class SegmentInfo(BaseModel):
    name: str
    kind: str
    channel: str
    description: str
    offer_id: str | None
    product_group: str | None
    definition_hash: str
    last_export_run_id: str | None
    last_export_rows: int | None


class Member(BaseModel):
    profile_id: str
    email: str | None
    firstname: str | None
    lastname: str | None
    phone: str | None
    address1: str | None
    zipcode: str | None
    city: str | None
    country: str | None


class MembersPage(BaseModel):
    segment: str
    publication_run_id: str | None
    items: list[Member]
    next_cursor: str | None


class Change(BaseModel):
    profile_id: str
    change: str = Field(description="joined or left")


class ChangesPage(BaseModel):
    segment: str
    since: str
    items: list[Change]
    next_cursor: str | None


class LookupRequest(BaseModel):
    """Exactly one identifier; it is normalised and hashed before it is used."""

    model_config = ConfigDict(extra="forbid")
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=64)
    _kind: str = PrivateAttr(default="")
    _digest: str = PrivateAttr(default="")

    @field_validator("email", "phone")
    @classmethod
    def _normalise(cls, raw: str | None, info: ValidationInfo) -> str | None:
        """Normalise like the identity graph (plus-tags, E.164); a field validator, so an
        invalid value's error is located at its field."""
        if not raw:
            return None
        normalise = normalise_email_value if info.field_name == "email" else normalise_phone_value
        normalised = normalise(raw)
        if normalised is None:
            raise ValueError(f"not a valid {info.field_name}")
        return normalised

    @model_validator(mode="after")
    def _hash(self) -> Self:
        """Keep only the hash of the one identifier given."""
        given = {k: v for k, v in (("email", self.email), ("phone", self.phone)) if v}
        if len(given) != 1:
            raise ValueError("give exactly one of email or phone")
        ((kind, normalised),) = given.items()
        self._kind, self._digest = kind, sha256_hex(normalised)
        return self

    @property
    def hashed(self) -> tuple[str, str]:
        """(kind, SHA-256 hex of the normalised identifier)."""
        return self._kind, self._digest


class LookupMatch(BaseModel):
    profile_id: str
    matched_on: str


class LookupResult(BaseModel):
    matches: list[LookupMatch]


class Problem(BaseModel):
    detail: str


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem,
          "description": "Invalid cursor, or an e-mail address or phone number in the URL."},
    401: {"model": Problem, "description": "Missing or invalid API key."},
    404: {"model": Problem, "description": "Unknown segment, export or profile."},
    503: {"model": Problem, "description": "No publication, or a mart missing from it."},
}


# ------------------------------------------------------------------------------- privacy

URL_IDENTIFIER_HINT = (
    "e-mail addresses and phone numbers must not be sent in a URL, which ends up in logs: look "
    'a profile up with POST /profiles/lookup and a JSON body {"email": ...} or {"phone": ...}'
)
_PHONE_IN_URL = re.compile(r"(?<![A-Za-z0-9_])[0-9](?:[ ()]*[0-9]){6,}(?![A-Za-z0-9_])")
"""Seven or more digits standing alone (spaces and brackets between them, as in "+49 (30)
123456"). Profile ids (P + hex), run ids with a time ("manual-20260312T060000Z") and segment
names ("seg_2026") have a letter or "_" next to their digits; no legitimate value has a space."""
_OPAQUE_PARAMS = frozenset({"cursor", "limit"})
"""Query parameters not searched for phone numbers: a cursor is base64 this API issued (digit
runs happen), a limit is a bounded number; neither is ever echoed or logged."""
_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_DIGIT_RUN = re.compile(r"[0-9]{7}")


def identifier_in_url(scope: Scope) -> bool:
    """An e-mail address ('@' anywhere) or a phone number in the decoded path or query."""
    path = scope["path"]
    query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    if "@" in path or any("@" in key or "@" in value for key, value in query):
        return True
    searched = [path, *(key for key, _ in query),
                *(value for key, value in query if key not in _OPAQUE_PARAMS)]
    return any(_PHONE_IN_URL.search(text) for text in searched)


class UrlPrivacyMiddleware:
    """Refuse identifiers in URLs and log every request by route template, never by URL.

    Replaces uvicorn's access log (``cdp serve`` turns it off), which writes path and query
    string verbatim.
    """

    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before responding

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            if identifier_in_url(scope):
                refusal = JSONResponse({"detail": URL_IDENTIFIER_HINT}, status_code=400)
                await refusal(scope, receive, send_noting_status)
            else:
                await self.app(scope, receive, send_noting_status)
        finally:
            access_log.info("%s %s %d %.1f ms", scope["method"], self.template(scope), status,
                            (time.perf_counter() - started) * 1000)

    def template(self, scope: Scope) -> str:
        """The route's path template ("/profiles/{profile_id}"); a refused request never reached
        the router, so it is matched here."""
        route = scope.get("route") or next(
            (r for r in self.routes if r.matches(scope)[0] is not Match.NONE), None)
        return getattr(route, "path", None) or "(no route)"


def _safe_loc(part: str | int) -> str | int:
    """A location part as is if it is an index or a field name; the key of an unknown body
    field is client data (it may be an e-mail address), so anything else is masked."""
    if isinstance(part, int) or (_FIELD_NAME.fullmatch(part) and not _DIGIT_RUN.search(part)):
        return part
    return "<redacted>"


async def validation_failed(request: Request, error: RequestValidationError) -> JSONResponse:
    """422 naming location, message and type of each problem - without FastAPI's ``input``
    and ``ctx``, which echo the submitted value (an e-mail address, a phone number)."""
    detail = [{"loc": [_safe_loc(part) for part in e["loc"]], "msg": e["msg"], "type": e["type"]}
              for e in error.errors()]
    return JSONResponse({"detail": detail}, status_code=422)


# ---------------------------------------------------------------------------- pagination


def _encode_cursor(after: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": after}).encode()).decode()


def _decode_cursor(cursor: str | None) -> str:
    if not cursor:
        return ""
    try:
        after = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii")))["after"]
    except (ValueError, KeyError, TypeError, UnicodeEncodeError, binascii.Error):
        raise HTTPException(400, "invalid cursor: pass next_cursor from the previous page") \
            from None
    if not isinstance(after, str):
        raise HTTPException(400, "invalid cursor: pass next_cursor from the previous page")
    return after


def _page(cur: duckdb.DuckDBPyConnection, table: str, cursor: str | None,
          limit: int) -> tuple[list[dict[str, Any]], str | None]:
    """Keyset page over a table stored in profile_id order: stable under concurrent paging.

    No ORDER BY: the tables are created sorted and the connection preserves insertion order,
    so the scan can stop after ``limit`` rows instead of sorting everything after the cursor
    (4x faster paging through a million members).
    """
    rows = cur.execute(f"SELECT * FROM {table} WHERE profile_id > ? LIMIT ?",
                       [_decode_cursor(cursor), limit + 1]).fetchall()
    names = [d[0] for d in cur.description or []]
    items = [dict(zip(names, row, strict=True)) for row in rows[:limit]]
    more = len(rows) > limit
    return items, _encode_cursor(items[-1]["profile_id"]) if more else None


# ---------------------------------------------------------------------------------- app


def create_app(paths: DataPaths, api_config: Path | None = None,
               segments_config: Path | None = None) -> FastAPI:
    """The FastAPI app; fails at once on missing keys or invalid segment definitions."""
    settings = ApiSettings.load(api_config or config_dir() / "api.yml")
    try:
        config = load_config(segments_config or default_config_path())
    except (SegmentError, ValueError) as error:
        raise ApiConfigError(str(error)) from error
    warehouse = Warehouse(paths.published_db, paths.exports, settings.members_max_age)
    header = APIKeyHeader(name="X-API-Key", auto_error=False,
                          description="An API key from CDP_API_KEYS or config/api.yml.")

    def authorised(key: Annotated[str | None, Security(header)]) -> None:
        if not key or not settings.accepts(key):
            raise HTTPException(401, "missing or invalid X-API-Key",
                                headers={"WWW-Authenticate": "APIKey"})

    app = FastAPI(title="CDP activation API", version="1", description=__doc__,
                  dependencies=[Depends(authorised)], responses=ERROR_RESPONSES)
    Limit = Annotated[int, Query(ge=1, le=settings.max_page,
                                 description="Rows per page.")]
    Cursor = Annotated[str | None, Query(max_length=512,
                                         description="next_cursor of the previous page.")]
    Name = Annotated[str, PathParam(pattern=SEGMENT_NAME, description="Segment name.")]

    def segment_of(name: str) -> Segment:
        with warehouse.cursor() as cur:
            segments = available_segments(config, cur)
        if name not in segments:
            raise HTTPException(404, f"unknown segment {name!r}")
        return segments[name]

    def members_table(
        segment: Segment,
    ) -> tuple[str, Callable[[duckdb.DuckDBPyConnection], None]]:
        """The in-memory table of a segment's members and how to build it (once per
        publication: the suppression chain runs on the first request, not on every page)."""
        table = f'memory.main."members__{segment.name}"'

        def build(con: duckdb.DuckDBPyConnection) -> None:
            try:
                result = suppress(con, segment, config.policy, table_prefix=f"api_{segment.name}")
            except (MissingTableError, SegmentError) as error:
                raise HTTPException(503, str(error)) from None
            con.execute(f"CREATE OR REPLACE TABLE {table} AS "
                        f"{member_rows_sql(result.members)} ORDER BY profile_id")
            con.execute(f"DROP TABLE {result.members}; DROP TABLE {result.drops}")

        return table, build

    @app.get("/segments", response_model=list[SegmentInfo], summary="List segments")
    def list_segments() -> list[SegmentInfo]:
        with warehouse.cursor() as cur:
            segments = available_segments(config, cur)
        infos = []
        for name, s in sorted(segments.items()):
            last = previous_export(warehouse.exports_dir, name, run_id="")
            infos.append(SegmentInfo(
                name=name, kind=s.kind, channel=s.channel, description=s.description,
                offer_id=s.offer_id, product_group=s.product_group,
                definition_hash=s.definition_hash,
                last_export_run_id=last.manifest.run_id if last else None,
                last_export_rows=last.manifest.rows if last else None))
        return infos

    @app.get("/segments/{name}/members", response_model=MembersPage,
             summary="Page through a segment's members after suppression")
    def members(name: Name, cursor: Cursor = None,
                limit: Limit = settings.default_page) -> dict[str, Any]:
        table, build = members_table(segment_of(name))
        with warehouse.cursor(table, build) as cur:
            items, next_cursor = _page(cur, table, cursor, limit)
            run = publication_run_id(cur)
        # Plain dicts: FastAPI validates them against MembersPage once, not twice.
        return {"segment": name, "publication_run_id": run, "items": items,
                "next_cursor": next_cursor}

    @app.get("/segments/{name}/changes", response_model=ChangesPage,
             summary="Who joined or left the segment since an export")
    def changes(
        name: Name,
        since: Annotated[str, Query(pattern=RUN_ID, description="Run id of an export.")],
        cursor: Cursor = None,
        limit: Limit = settings.default_page,
    ) -> dict[str, Any]:
        segment = segment_of(name)
        previous = warehouse.exports_dir / name / safe_run_id(since) / "members.parquet"
        if not previous.is_file():
            raise HTTPException(404, f"no export {since!r} of segment {name!r}")
        current, build_current = members_table(segment)
        table = (f'memory.main."changes__{name}__'
                 f'{hashlib.sha256(since.encode()).hexdigest()[:16]}"')
        exported = sql_path(previous)

        def build(con: duckdb.DuckDBPyConnection) -> None:
            warehouse.cursor(current, build_current).close()
            con.execute(
                f"CREATE OR REPLACE TABLE {table} AS "
                f"SELECT profile_id, 'joined' AS change FROM {current} "
                f"ANTI JOIN read_parquet({exported}) AS e USING (profile_id) UNION ALL "
                f"SELECT profile_id, 'left' FROM read_parquet({exported}) AS e "
                f"ANTI JOIN {current} USING (profile_id) ORDER BY profile_id")

        with warehouse.cursor(table, build) as cur:
            items, next_cursor = _page(cur, table, cursor, limit)
        return {"segment": name, "since": since, "items": items, "next_cursor": next_cursor}

    @app.get("/profiles/{profile_id}", summary="One profile: golden record, consent, traits")
    def profile(
        profile_id: Annotated[str, PathParam(pattern=PROFILE_ID)],
    ) -> dict[str, Any]:
        with warehouse.cursor() as cur:
            require_or_503(cur, {"main.dim_profiles", "main.dim_profile_consent"})
            record = _one(cur, f"SELECT * FROM {PUBLISHED}.main.dim_profiles "
                          "WHERE profile_id = ?", profile_id)
            if record is None:
                raise HTTPException(404, "unknown profile")
            consent = cur.execute(
                f"SELECT channel, contact_point, status, is_contactable, decided_at "
                f"FROM {PUBLISHED}.main.dim_profile_consent WHERE profile_id = ? "
                "ORDER BY channel, contact_point", [profile_id]).fetchall()
            traits = (_one(cur, f"SELECT * FROM {PUBLISHED}.main.dim_profile_traits "
                           "WHERE profile_id = ?", profile_id)
                      if "main.dim_profile_traits" in published_tables(cur) else None)
        record["consent"] = [dict(zip(("channel", "contact_point", "status", "is_contactable",
                                       "decided_at"), row, strict=True)) for row in consent]
        record["traits"] = traits
        return json.loads(json.dumps(record, default=_json_default))

    @app.post("/profiles/lookup", response_model=LookupResult,
              summary="Find profiles by email or phone (hashed on the way in; reads only)")
    def lookup(request: LookupRequest) -> LookupResult:
        kind, digest = request.hashed
        table = "memory.main.identity_hashes"

        def build(con: duckdb.DuckDBPyConnection) -> None:
            require_or_503(con, {"main.fct_identity_graph"})
            con.execute(
                f"CREATE OR REPLACE TABLE {table} AS "
                f"SELECT DISTINCT sha256(email) AS digest, 'email' AS kind, profile_id "
                f"FROM {PUBLISHED}.main.fct_identity_graph WHERE email IS NOT NULL UNION "
                f"SELECT DISTINCT sha256(phone), 'phone', profile_id "
                f"FROM {PUBLISHED}.main.fct_identity_graph WHERE phone IS NOT NULL")

        with warehouse.cursor(table, build) as cur:
            rows = cur.execute(f"SELECT profile_id FROM {table} WHERE digest = ? AND kind = ? "
                               "ORDER BY profile_id", [digest, kind]).fetchall()
        return LookupResult(matches=[LookupMatch(profile_id=r[0], matched_on=kind)
                                     for r in rows])

    # Starlette types every handler as taking a plain Exception (Callable parameters are
    # contravariant), so a handler for one exception class never matches; Kludex/starlette#2417.
    app.add_exception_handler(RequestValidationError, validation_failed)  # type: ignore[arg-type]
    app.add_middleware(UrlPrivacyMiddleware, routes=app.router.routes)
    return app


def require_or_503(con: duckdb.DuckDBPyConnection, tables: set[str]) -> None:
    """A mart missing from the publication is the server's state, not the client's error."""
    try:
        require_tables(con, tables, "this endpoint")
    except MissingTableError as error:
        raise HTTPException(503, str(error)) from None


def _one(cur: duckdb.DuckDBPyConnection, sql: str, key: str) -> dict[str, Any] | None:
    row = cur.execute(sql, [key]).fetchone()
    if row is None:
        return None
    return dict(zip([d[0] for d in cur.description or []], row, strict=True))


def _json_default(value: object) -> object:
    """Dates and timestamps as ISO strings; anything else DuckDB returns as text."""
    isoformat = getattr(value, "isoformat", None)
    return isoformat() if callable(isoformat) else str(value)
