"""Recordings: what the engine received (raw venue frames) and did (orders, fills, decisions),
in Parquet, read back in the order it was received. See docs/replay.md."""
