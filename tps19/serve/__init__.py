"""`tps19 serve`: the browser desk behind a login (login.py) and its textual-serve server (server.py)."""
