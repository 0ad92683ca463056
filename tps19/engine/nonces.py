"""Every signed request TPS19 sends a venue carries a nonce of its own.

ccxt 4.5.90's cryptocom signs a private REST call with ``id = nonce = milliseconds()`` (and its
websocket requests with ``incrementing_nonce()``, which is the same clock). Two identical requests
signed in one millisecond -- two lookups fired together, a poll beside a lookup, two coroutines
resumed back to back after the process was descheduled -- are therefore byte-identical, and a
venue with replay protection refuses the second as a replay (the simulated exchange answers
40006 DUPLICATE_REQUEST): the order that request was looking for stays ``unknown``. Binance signs
its ``timestamp`` from the same clock (ccxt's binance: ``milliseconds() - timeDifference``); the
venue has no replay rule, but the same bytes would be the same request to one that had.

`sign_uniquely` gives a client a nonce that is the venue's own reading of the clock, raised to one
past the last nonce handed to any client of the same venue and API key in this process. It runs
ahead of the clock only while more than one request per millisecond is signed, by as many
milliseconds as that excess -- far inside any venue's nonce window at the rates TPS19 sends.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any, Callable

# ccxt ids whose nonce is a millisecond clock reading (a +1 step is one millisecond, harmless):
# cryptocom, and binance with the classes built on it (binanceus, binanceusdm, ...); a venue
# counting in seconds would be pushed a second ahead per extra request, so others keep ccxt's own
MILLISECOND_NONCES = ("cryptocom", "binance")

_lock = threading.Lock()
_last: dict[tuple[str, str], int] = {}  # (ccxt id, sha256 of the API key) -> last nonce handed out


def _signer(client: Any) -> tuple[str, str]:
    # the key itself is never kept (nor printed): one digest names the signer
    key = str(getattr(client, "apiKey", "") or "")
    return str(getattr(client, "id", "")), hashlib.sha256(key.encode()).hexdigest()


def next_nonce(signer: tuple[str, str], clock: Callable[[], Any]) -> int:
    """The clock's reading, or one past the last nonce given to ``signer`` if that is later."""
    now = int(clock())
    with _lock:  # ccxt's sync clients sign from worker threads too
        n = max(now, _last.get(signer, 0) + 1)
        _last[signer] = n
    return n


def sign_uniquely(client: Any) -> bool:
    """Make ``client`` (a ccxt exchange instance) sign every request with a nonce no other
    request of the same key in this process had. Idempotent; False for a venue whose nonce is not
    a millisecond clock (left as ccxt has it)."""
    if getattr(client, "_tps19_unique_nonces", False):
        return True
    signer = _signer(client)
    own = getattr(type(client), "nonce", None)
    if not signer[0].startswith(MILLISECOND_NONCES) or own is None:
        return False
    clock = own.__get__(client)  # the class's own clock (binance's keeps timeDifference)

    def nonce() -> int:
        return next_nonce(signer, clock)

    # instance attributes: ccxt calls self.nonce() (REST) and self.incrementing_nonce() (websocket
    # ids and logins); both now draw from one strictly increasing sequence
    client.nonce = nonce
    client.incrementing_nonce = nonce
    client._tps19_unique_nonces = True
    return True
