"""aiohttp adapter: thin handlers that parse, call one store or domain function, and answer JSON."""
