"""The client library of the local API: ``Client`` (asyncio) and ``SyncClient`` (blocking)."""

from rpilinkd.client.aio import DEFAULT_SOCKET, Client, Message, default_socket
from rpilinkd.client.sync import SyncClient

__all__ = ["DEFAULT_SOCKET", "Client", "Message", "SyncClient", "default_socket"]
