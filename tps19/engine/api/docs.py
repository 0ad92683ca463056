"""The API's docs page: every route and the order body, built from the app itself. It carries
no account data and loads nothing from outside (the machine may be offline, and no CDN should
see a trader's API); the full schema is /api/v1/openapi.json, behind the token."""

from __future__ import annotations

import html
from typing import Any

ORDER_KINDS = ("market", "limit", "post_only", "ioc", "stop_market", "stop_limit", "take_profit",
               "take_profit_limit", "trailing_stop", "oco")


def docs_page(app: Any) -> str:
    rows = []
    for route in app.routes:
        methods = sorted(m for m in (getattr(route, "methods", None) or ()) if m not in ("HEAD", "OPTIONS"))
        path = getattr(route, "path", "")
        if not path.startswith("/api/") or not methods:
            continue
        doc = (getattr(route, "endpoint", None).__doc__ or "").strip().split("\n\n")[0] if getattr(route, "endpoint", None) else ""
        rows.append(f"<tr><td><code>{' '.join(methods)}</code></td><td><code>{html.escape(path)}</code></td>"
                    f"<td>{html.escape(' '.join(doc.split()))}</td></tr>")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>TPS19 control API</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto;line-height:1.4}}
td{{padding:.2em .8em;vertical-align:top}}code{{background:#eee;padding:0 .2em}}</style></head>
<body><h1>TPS19 control API v1</h1>
<p>Every route needs <code>Authorization: Bearer TPS19_API__TOKEN</code>. Wrong tokens are throttled
(429) and logged. In live mode the API is read-only (reads and the kill switch) unless
<code>TPS19_API__LIVE_ORDERS=true</code>. The machine-readable schema is
<code>/api/v1/openapi.json</code> (with the token).</p>
<table><tr><th>method</th><th>path</th><th>what</th></tr>{''.join(rows)}</table>
<h2>POST /api/v1/orders</h2>
<p>JSON body; numbers as strings (exact decimals): <code>symbol</code>, <code>side</code> (buy|sell),
<code>type</code> ({', '.join(ORDER_KINDS)}), <code>amount</code>; as the kind needs <code>price</code>,
<code>trigger_price</code>, <code>trailing_pct</code> or <code>trailing_distance</code>,
<code>activation_price</code>; an <code>oco</code> takes <code>stop_loss_price</code> and
<code>take_profit_price</code>, and an entry given either is a bracket. Optional <code>venue</code> and
<code>client_order_id</code> (a repeated id returns the existing order, never a second one).
201 with the order, or 422 naming the refused field or risk limit.</p>
<pre>curl -H "Authorization: Bearer $TPS19_API__TOKEN" -d '{{"symbol":"BTC/USDT","side":"buy","type":"limit","amount":"0.01","price":"60000"}}' \\
     -H 'Content-Type: application/json' http://127.0.0.1:8787/api/v1/orders</pre>
</body></html>"""
