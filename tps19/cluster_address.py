"""A Dask scheduler's address (`--cluster tcp://HOST:PORT`, TPS19_ML__CLUSTER): dependency-free,
read by the settings and the engine alike (importing ``distributed`` costs ~1 s, so only the code
that connects does)."""

from __future__ import annotations

from urllib.parse import urlsplit


class ClusterError(ValueError):
    """The cluster cannot be used (a bad address, no scheduler there); one line for the user. A
    ValueError, so a command's bad-input handling reports it like any other bad flag."""


def check_address(address: str) -> str:
    """``tcp://HOST:PORT`` as given (no trailing slash), or ClusterError naming what is wrong. An
    address carrying credentials is refused without echoing them: the address is shown in logs and
    stored in a retrained model's lineage, and Dask's tcp comm has no authentication to carry."""
    try:
        parts = urlsplit(address)
        port = parts.port
    except ValueError:
        port = None
        parts = None
    if parts is not None and (parts.username is not None or parts.password is not None):
        raise ClusterError("--cluster takes tcp://HOST:PORT (a Dask scheduler) without credentials: "
                           "its port has no authentication (keep it on a private network or an SSH tunnel)")
    if (parts is None or parts.scheme != "tcp" or not parts.hostname or port is None
            or parts.path not in ("", "/") or parts.query or parts.fragment):
        raise ClusterError(f"--cluster takes tcp://HOST:PORT (a Dask scheduler), not {address!r}")
    return address.rstrip("/")
