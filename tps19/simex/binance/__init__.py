"""The simulated exchange's Binance spot dialect (REST /api/v3, combined streams, the WebSocket API's
user data stream), over the same venue core as the Crypto.com dialect (tps19.simex)."""

from .server import BinanceSimExchange

__all__ = ["BinanceSimExchange"]
