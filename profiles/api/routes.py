"""The API's routes: thin handlers that validate, look up and delegate the SQL to ``queries``.

No ``from __future__ import annotations``: FastAPI must see the endpoint annotations built in
``segment_router`` (page-size limits from configuration) as objects, not strings.
"""

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import duckdb
from fastapi import APIRouter, HTTPException, Query, Response
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from core.vocabulary import safe_run_id
from profiles.activation.discovery import available_segments
from profiles.activation.export import previous_export
from profiles.activation.offers import Verdict, next_best_offers
from profiles.activation.syntax import NAME_PATTERN, SegmentError
from profiles.api import queries
from profiles.api.dependencies import (
    ApiState,
    State,
    members_build,
    segment_of,
    unavailable_as_503,
)
from profiles.api.models import (
    PROFILE_ID,
    ChangesPage,
    Channel,
    EventBatch,
    EventsAccepted,
    Health,
    LookupMatch,
    LookupRequest,
    LookupResult,
    MembersPage,
    OfferExclusion,
    OfferProposal,
    OffersAnswer,
    ProfileRecord,
    SegmentInfo,
)
from profiles.api.pagination import page
from profiles.publishing.published import publication_run_id
from profiles.serving.offers import UnknownProfile

# Path and query patterns are checked by pydantic's Rust regex, whose "$" is the end of the text.
SEGMENT_NAME = rf"^{NAME_PATTERN}$"
RUN_ID = r"^[A-Za-z0-9_:+-][A-Za-z0-9_.:+-]{0,119}$"

Cursor = Annotated[str | None, Query(max_length=512,
                                     description="next_cursor of the previous page.")]
Name = Annotated[str, PathParam(pattern=SEGMENT_NAME, description="Segment name.")]


def segment_router(default_page: int, max_page: int) -> APIRouter:
    """Segments, members and changes; the page sizes are part of the published schema."""
    router = APIRouter()
    Limit = Annotated[int, Query(ge=1, le=max_page, description="Rows per page.")]

    @router.get("/segments", response_model=list[SegmentInfo], summary="List segments")
    def list_segments(state: State) -> list[SegmentInfo]:
        with state.warehouse.cursor() as cur:
            segments = available_segments(state.config, cur)
        infos = []
        for name, s in sorted(segments.items()):
            last = previous_export(state.warehouse.exports_dir, name, run_id="")
            infos.append(SegmentInfo(
                name=name, kind=s.kind, channel=s.channel, description=s.description,
                offer_id=s.offer_id, product_group=s.product_group,
                definition_hash=s.definition_hash,
                last_export_run_id=last.manifest.run_id if last else None,
                last_export_rows=last.manifest.rows if last else None))
        return infos

    @router.get("/segments/{name}/members", response_model=MembersPage,
                summary="Page through a segment's members after suppression")
    def members(state: State, name: Name, cursor: Cursor = None,
                limit: Limit = default_page) -> dict[str, Any]:
        table, build = members_build(state, segment_of(state, name))
        with state.warehouse.cursor(table, build, follows_events=True) as cur:
            items, next_cursor = page(cur, table, cursor, limit)
            run = publication_run_id(cur)
        # Plain dicts: FastAPI validates them against MembersPage once, not twice.
        return {"segment": name, "publication_run_id": run, "items": items,
                "next_cursor": next_cursor}

    @router.get("/segments/{name}/changes", response_model=ChangesPage,
                summary="Who joined or left the segment since an export")
    def changes(
        state: State,
        name: Name,
        since: Annotated[str, Query(pattern=RUN_ID, description="Run id of an export.")],
        cursor: Cursor = None,
        limit: Limit = default_page,
    ) -> dict[str, Any]:
        segment = segment_of(state, name)
        exported = state.warehouse.exports_dir / name / safe_run_id(since) / "members.parquet"
        if not exported.is_file():
            raise HTTPException(404, f"no export {since!r} of segment {name!r}")
        current, build_current = members_build(state, segment)
        table = queries.changes_table(name, since)

        def build(con: duckdb.DuckDBPyConnection) -> None:
            state.warehouse.cursor(current, build_current, follows_events=True).close()
            queries.build_changes(con, table, current, exported)

        with state.warehouse.cursor(table, build, follows_events=True) as cur:
            items, next_cursor = page(cur, table, cursor, limit)
        return {"segment": name, "since": since, "items": items, "next_cursor": next_cursor}

    return router


def profile_router() -> APIRouter:
    """Profile by id, and lookup by a hashed email or phone."""
    router = APIRouter()

    @router.get("/profiles/{profile_id}", response_model=ProfileRecord,
                summary="One profile: golden record, consent, traits")
    async def profile(
        state: State,
        profile_id: Annotated[str, PathParam(pattern=PROFILE_ID)],
    ) -> Response:
        """From the publication's serving store: one B-tree lookup of the document the
        publication's marts make. The same statement answers from the file for a publication
        without a store and for a profile an event of the hot list names (its opt-outs show)."""
        store, hot = await state.warehouse.serving()
        if store is not None and profile_id not in hot:
            document = store.document(profile_id)
        else:
            document = await run_in_threadpool(_profile_from_file, state, profile_id)
        if document is None:
            raise HTTPException(404, "unknown profile")
        return Response(document, media_type="application/json")

    @router.get("/profiles/{profile_id}/offers", response_model=OffersAnswer,
                summary="Next best offers in a channel, and why every other offer is excluded")
    async def offers(
        state: State,
        profile_id: Annotated[str, PathParam(pattern=PROFILE_ID)],
        channel: Annotated[Channel, Query(description="The channel of the contact.")],
    ) -> Response:
        """The catalogue's offers (``offers.yml``) through the export's suppression chain for
        this one profile, including what ``POST /events`` received since the publication:
        computed for every profile when the publication was made (the serving store), asked
        of the chain again for this profile where an event names it or a verdict expired."""
        store, hot = await state.warehouse.serving()
        stored: list[Verdict] | None = None
        run: str | None = None
        if store is not None and profile_id not in hot:
            try:
                stored = store.offers(state.catalogue, profile_id, channel, time.time())
            except UnknownProfile:
                raise HTTPException(404, "unknown profile") from None
        if stored is not None and store is not None:
            verdicts, run = stored, store.run_id
        else:
            verdicts, run = await run_in_threadpool(_offers_from_chain, state, profile_id,
                                                    channel)
        offered = [OfferProposal(offer_id=v.offer.id, description=v.offer.description,
                                 product_group=v.offer.product_group,
                                 priority=v.offer.priority) for v in verdicts if v.reason is None]
        excluded = [OfferExclusion(offer_id=v.offer.id, description=v.offer.description,
                                   product_group=v.offer.product_group,
                                   priority=v.offer.priority, step=v.step or "",
                                   reason=v.reason) for v in verdicts if v.reason is not None]
        return _json(OffersAnswer(profile_id=profile_id, channel=channel,
                                  publication_run_id=run, offers=offered, excluded=excluded))

    @router.post("/profiles/lookup", response_model=LookupResult,
                 summary="Find profiles by email or phone (hashed on the way in; reads only)")
    async def lookup(state: State, request: LookupRequest) -> Response:
        kind, digest = request.hashed
        store, _ = await state.warehouse.serving()
        if store is not None:
            found = store.profiles_with_hash(kind, digest)
        else:
            found = await run_in_threadpool(_hash_from_file, state, kind, digest)
        return _json(LookupResult(matches=[LookupMatch(profile_id=p, matched_on=kind)
                                           for p in found]))

    return router


def _json(answer: BaseModel) -> Response:
    """A typed answer serialised once, by pydantic's own encoder: returned as a model, FastAPI
    would validate it against the response model again and encode it field by field. The
    response model still documents it."""
    return Response(answer.model_dump_json(), media_type="application/json")


def _profile_from_file(state: ApiState, profile_id: str) -> str | None:
    with state.warehouse.cursor() as cur, unavailable_as_503():
        return queries.profile_document(cur, profile_id)


def _offers_from_chain(state: ApiState, profile_id: str,
                       channel: str) -> tuple[list[Verdict], str | None]:
    """The chain's verdicts for one profile, and the run of the publication it read."""
    with state.warehouse.exclusive() as cur, unavailable_as_503(SegmentError):
        if not queries.profile_exists(cur, profile_id):
            raise HTTPException(404, "unknown profile")
        verdicts = next_best_offers(cur, state.offers, state.config, profile_id, channel)
        return verdicts, publication_run_id(cur)


def _hash_from_file(state: ApiState, kind: str, digest: str) -> list[str]:
    def build(con: duckdb.DuckDBPyConnection) -> None:
        with unavailable_as_503():
            queries.build_identity_hashes(con)

    with state.warehouse.cursor(queries.IDENTITY_HASHES, build) as cur:
        return queries.profiles_with_hash(cur, kind, digest)


def events_router() -> APIRouter:
    """Real-time events in (write key): landed for the next run, in effect at once."""
    router = APIRouter()

    @router.post("/events", response_model=EventsAccepted,
                 summary="Post unsubscribes, consent changes, offer deliveries and responses")
    def post_events(state: State, batch: EventBatch) -> EventsAccepted:
        """Each new event is landed durably (``landing/api_events/``) for the next run and
        counts at once for every API answer and export (the hot list); an event id landed
        before is acknowledged as a duplicate. An event naming only a profile id is landed
        with that profile's e-mail and phone, so the next run links it to the person."""
        received = datetime.now(UTC)
        lines = []
        for index, event in enumerate(batch.events):
            email, phone = event.email, event.phone
            if event.profile_id and not (email or phone):
                with state.warehouse.cursor() as cur, unavailable_as_503():
                    found = queries.contact_of(cur, event.profile_id)
                if found is None:
                    raise HTTPException(422, f"events[{index}]: unknown profile_id, or a "
                                        "profile without an e-mail or phone to identify it by")
                email, phone = found
            lines.append(event.landed(received, email, phone))
        landed = state.events.land(lines, received)
        return EventsAccepted(written=landed.written, duplicates=landed.duplicates)

    return router


def health_router() -> APIRouter:
    """Liveness for load balancers: no key, no personal data."""
    router = APIRouter()

    @router.get("/health", response_model=Health,
                summary="The server answers and a publication is open")
    def health(state: State) -> Health:
        with state.warehouse.cursor() as cur:
            return Health(status="ok", publication_run_id=publication_run_id(cur))

    return router


def report_router(reports_dir: Path) -> APIRouter:
    """The controlling report of the latest publication (``cdp report``, the pipeline's last
    stage): the self-contained HTML file, as written."""
    router = APIRouter()
    latest = reports_dir / "kpi" / "latest.html"

    @router.get("/report", response_class=HTMLResponse,
                summary="The controlling report (KPIs, trends, definitions) as one HTML page",
                responses={200: {"content": {"text/html": {}},
                                 "description": "The report, self-contained."}})
    def report() -> HTMLResponse:
        try:
            return HTMLResponse(latest.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise HTTPException(404, "no report yet: it follows each publication") from None

    return router

