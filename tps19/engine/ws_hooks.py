"""A hook on every websocket a ccxt.pro client opens: the frame guard (venue.py) and the
recording tap (recording/tap.py) each wrap the client's websocket connections this way."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def on_every_ws(client: Any, wrap: Callable[[Any], None]) -> None:
    """Call ``wrap`` on each websocket connection of the ccxt.pro ``client``: those open now and
    every one it opens later (ccxt makes them in ``client.client(url)``)."""
    make_client = client.client

    def wrapped_client(url: str) -> Any:
        ws_client = make_client(url)
        wrap(ws_client)
        return ws_client

    client.client = wrapped_client
    for ws_client in list((getattr(client, "clients", None) or {}).values()):
        wrap(ws_client)
