"""The local API: msgpack over a Unix stream socket (docs/api.md)."""

from rpilinkd.api.protocol import API_VERSION
from rpilinkd.api.server import ApiServer, LinkService

__all__ = ["API_VERSION", "ApiServer", "LinkService"]
