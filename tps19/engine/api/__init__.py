"""The control API (`tps19 paper|live --api-port P`): FastAPI routes (app.py) served by uvicorn
in the engine's own loop (server.py), its docs page (docs.py). fastapi and uvicorn are imported
only when the API is started."""
