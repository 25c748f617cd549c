"""Typed keys for what the application carries: settings in, the database opened at start."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from aiohttp import web

from tracker.config import Settings
from tracker.store.database import Database
from tracker.store.feed import Listener
from tracker.store.group_commit import GroupCommit

if TYPE_CHECKING:  # imported only when TRACKER_AMQP_URL is set (it loads proton)
    from tracker.amqp.consumer import Consumer

SETTINGS = web.AppKey("settings", Settings)
DATABASE = web.AppKey("database", Database)
APPENDS = web.AppKey("appends", GroupCommit)  # every delivery is appended through this
LISTENER = web.AppKey("listener", Listener)  # wakes the live feed when something commits
FEED_DATABASE = web.AppKey("feed_database", Database)  # the live feeds' own small pool
STREAMS = web.AppKey("streams", set[object])  # the live feeds open now (one token each)
STOPPING = web.AppKey("stopping", asyncio.Event)  # set at shutdown: live feeds end
# The AMQP consumer, when TRACKER_AMQP_URL is set.
AMQP: web.AppKey[Consumer] = web.AppKey("amqp")
