"""The desk: the Textual app, its screens and widgets. Only the CLI and ``tps19.run`` import it;
the engine never does (it publishes events, the desk subscribes)."""
