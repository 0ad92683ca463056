"""Request signing exactly as ccxt's cryptocom ``sign()`` / ``params_to_string`` do."""

from __future__ import annotations

import hashlib
import hmac


def _py_str(value: object) -> str:
    # ccxt (Python) uses str(): True -> "True", None -> "None", 1.5 -> "1.5"
    return str(value)


def params_to_string(obj: object, level: int = 0) -> str:
    """Port of ccxt cryptocom.params_to_string (max depth 3, keys sorted, lists flattened)."""
    if level >= 3:
        return _py_str(obj)
    if isinstance(obj, str):
        return obj
    if not isinstance(obj, (dict, list)):  # ccxt would raise here; never crash the server
        return _py_str(obj)
    out = []
    keys = obj if isinstance(obj, list) else sorted(obj.keys())  # type: ignore[union-attr]
    for key in keys:
        out.append(key if isinstance(key, str) else _py_str(key))
        if isinstance(obj, list):
            # ccxt indexes the list by its own items here (object[key]); for a list this is
            # only reached with string items, which then raise in ccxt too. Mirror the str.
            continue
        value = obj[key]  # type: ignore[index]
        if isinstance(value, list):
            for item in value:
                out.append(params_to_string(item, level + 1))
        else:
            out.append(_py_str(value))
    return "".join(out)


def rest_signature(secret: str, method: str, req_id: object, api_key: str, params: dict, nonce: object) -> str:
    payload = f"{method}{req_id}{api_key}{params_to_string(params or {}, 0)}{nonce}"
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def auth_signature(secret: str, method: str, req_id: object, api_key: str, nonce: object) -> str:
    """public/auth on the user websocket: method + id + api_key + nonce."""
    payload = f"{method}{req_id}{api_key}{nonce}"
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
