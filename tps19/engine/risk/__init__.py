"""Risk beyond the per-order stage (``engine/trading/risk.py``): circuit breakers, position
sizing, risk metrics and portfolio optimisation. docs/risk.md names every rule and its setting."""
