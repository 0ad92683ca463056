"""TPS19: a terminal trading desk for crypto markets."""

__version__ = "0.1.0"
