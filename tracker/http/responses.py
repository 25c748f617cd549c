"""Answers serialised through the document models (tracker/documents.py)."""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web

from tracker.documents import Document, Page


def document(answer: Document, status: int = 200) -> web.Response:
    return web.Response(body=answer.to_json(), status=status, content_type="application/json")


def page(items: Sequence[Document], next_cursor: str | None) -> web.Response:
    return document(Page(items=list(items), next_cursor=next_cursor))
