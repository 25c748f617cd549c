"""Typed keys for what the application carries: settings in, the database opened at start."""

from aiohttp import web

from tracker.config import Settings
from tracker.store.database import Database

SETTINGS = web.AppKey("settings", Settings)
DATABASE = web.AppKey("database", Database)
