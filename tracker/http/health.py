"""Liveness (the process answers) and readiness (the database answers, in time)."""

from __future__ import annotations

from aiohttp import web

from tracker.documents import ReadyDocument, StatusDocument
from tracker.http.errors import ApiError
from tracker.http.keys import AMQP, DATABASE
from tracker.http.responses import document
from tracker.store.errors import Unavailable


async def healthz(_: web.Request) -> web.Response:
    return document(StatusDocument(status="ok"))


async def readyz(request: web.Request) -> web.Response:
    try:
        await request.app[DATABASE].fetch("readiness", "SELECT 1")
    except Unavailable:
        raise ApiError(503, "database_unavailable", "the database does not answer") from None
    consumer = request.app.get(AMQP)
    amqp = consumer.status.state.value if consumer is not None else None
    return document(ReadyDocument(status="ready", amqp=amqp))
