"""The simulated exchange's account endpoints beside trading: fee rates, accounts, the ledger,
deposit/withdrawal history and positions (spot: none), in the shapes ccxt's `cryptocom` parses.

ccxt call -> endpoint: fetch_trading_fees -> private/get-fee-rate; fetch_trading_fee ->
private/get-instrument-fee-rate; fetch_accounts -> private/get-accounts; fetch_ledger ->
private/get-transactions; fetch_deposits / fetch_withdrawals -> private/get-deposit-history /
private/get-withdrawal-history; fetch_positions -> private/get-positions (and the
user.position_balance channel that ccxt.pro's watch_positions subscribes to).
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Callable

from .engine import Account, Fill
from .instruments import Instrument
from .wire import fmt

BPS = Decimal(10_000)


def _date(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d")


class AccountApi:
    """Mixin of RestApi: account endpoints answered from the matching engine's state."""

    engine: Any
    start_ms: int
    clock: Callable[[], int]
    _window: Callable[[dict], tuple[int, int, int]]
    _inst_param: Callable[..., Instrument | None]

    def _account_handlers(self) -> dict[str, Callable[[Account, dict], dict]]:
        return {"get-fee-rate": self._h_fee_rate, "get-instrument-fee-rate": self._h_instrument_fee_rate,
                "get-accounts": self._h_accounts, "get-transactions": self._h_transactions,
                "get-deposit-history": self._h_deposits, "get-withdrawal-history": self._h_withdrawals,
                "get-positions": self._h_positions}

    def _bps(self, rate: Decimal) -> str:
        return fmt(rate * BPS)

    def _h_fee_rate(self, acct: Account, params: dict) -> dict:
        maker, taker = self._bps(self.engine.maker_fee), self._bps(self.engine.taker_fee)
        return {"spot_tier": "1", "deriv_tier": "1", "effective_spot_maker_rate_bps": maker,
                "effective_spot_taker_rate_bps": taker, "effective_deriv_maker_rate_bps": maker,
                "effective_deriv_taker_rate_bps": taker}

    def _h_instrument_fee_rate(self, acct: Account, params: dict) -> dict:
        inst = self._inst_param(params)
        assert inst is not None
        return {"instrument_name": inst.id, "effective_maker_rate_bps": self._bps(self.engine.maker_fee),
                "effective_taker_rate_bps": self._bps(self.engine.taker_fee)}

    def _h_accounts(self, acct: Account, params: dict) -> dict:
        master = {"uuid": acct.account_id, "user_uuid": acct.account_id, "enabled": True, "tradable": True,
                  "name": "SIMULATED", "country_code": "", "phone_country_code": "", "incorp_country_code": "",
                  "margin_access": "DISABLED", "derivatives_access": "DISABLED", "create_time": self.start_ms,
                  "update_time": self.start_ms, "two_fa_enabled": False, "kyc_level": "ADVANCED",
                  "suspended": False, "terminated": False, "spot_enabled": True, "margin_enabled": False,
                  "derivatives_enabled": False, "label": "SPOT"}
        return {"master_account": master, "sub_account_list": []}

    def _ledger_rows(self, acct: Account, f: Fill) -> list[dict]:
        """One fill moves three balances: what was received, what was paid, and the fee."""
        o, inst = f.order, f.order.inst
        base_q = inst.qty(f.qty)
        got, paid = ((inst.base, base_q), (inst.quote, -f.value)) if o.side == "BUY" else (
            (inst.quote, f.value), (inst.base, -base_q))
        common = {"account_id": acct.account_id, "event_date": _date(f.time), "order_id": o.id, "trade_id": f.trade_id,
                  "trade_match_id": f.match_id, "event_timestamp_ms": f.time,
                  "event_timestamp_ns": str(f.time * 1_000_000), "client_oid": o.client_oid or "",
                  "taker_side": f.liquidity, "side": o.side, "realized_pnl": "0"}
        rows = []
        for n, (journal, (ccy, qty)) in enumerate((("TRADING", got), ("TRADING", paid), ("TRADE_FEE", (o.fee_ccy, -f.fee)))):
            if journal == "TRADE_FEE" and not f.fee:
                continue
            rows.append({**common, "journal_type": journal, "journal_id": f"{f.trade_id}{n}",
                         "transaction_qty": fmt(qty), "transaction_cost": fmt(qty), "instrument_name": ccy})
        return rows

    def _h_transactions(self, acct: Account, params: dict) -> dict:
        start, end, limit = self._window(params)
        ccy = params.get("instrument_name")
        out: list[dict] = []
        for f in reversed(acct.trades):  # newest first, as the venue lists them
            if f.time > end:
                continue
            if f.time < start:
                break
            out.extend(r for r in self._ledger_rows(acct, f) if ccy is None or r["instrument_name"] == ccy)
            if len(out) >= limit:
                break
        return {"data": out[:limit]}

    def _h_deposits(self, acct: Account, params: dict) -> dict:
        # the simulated account is funded at start; it has no deposit history
        return {"deposit_list": []}

    def _h_withdrawals(self, acct: Account, params: dict) -> dict:
        return {"withdrawal_list": []}

    def _h_positions(self, acct: Account, params: dict) -> dict:
        self._inst_param(params, required=False)  # an unknown instrument is still an error
        return {"data": []}  # spot only: no derivative positions

    def _position_balance_json(self, acct: Account) -> dict:
        """The user.position_balance payload: spot balances, no positions."""
        now = self.clock()
        return {"balances": [{"instrument_name": c, "quantity": fmt(q), "update_timestamp_ms": now}
                             for c, q in sorted(acct.balances.items())], "positions": []}
