"""Embedded simulated Crypto.com Exchange v1 (REST + websockets) for ccxt's `cryptocom` clients.

    sim = SimExchange(seed=19); await sim.start(); point_ccxt(client, sim.base_url)
"""

from ..engine.venue import point_ccxt  # pointing a ccxt client at URLs is the venue side's job
from .server import SimExchange

__all__ = ["SimExchange", "point_ccxt"]
