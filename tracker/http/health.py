"""Liveness (the process answers) and readiness (the database answers, in time)."""

from __future__ import annotations

from aiohttp import web

from tracker.documents import StatusDocument
from tracker.http.errors import ApiError
from tracker.http.keys import DATABASE
from tracker.http.responses import document
from tracker.store.errors import Unavailable


async def healthz(_: web.Request) -> web.Response:
    return document(StatusDocument(status="ok"))


async def readyz(request: web.Request) -> web.Response:
    try:
        await request.app[DATABASE].fetch("readiness", "SELECT 1")
    except Unavailable:
        raise ApiError(503, "database_unavailable", "the database does not answer") from None
    return document(StatusDocument(status="ready"))
