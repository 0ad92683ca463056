"""Embedded simulated Crypto.com Exchange v1 (REST + websockets) for ccxt's `cryptocom` clients.

    sim = SimExchange(seed=19); await sim.start(); point_ccxt(client, sim.base_url)
"""

from .server import SimExchange, point_ccxt

__all__ = ["SimExchange", "point_ccxt"]
