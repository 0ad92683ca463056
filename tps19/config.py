"""Configuration: environment (prefix ``TPS19_``, nested with ``__``) and ``.env``.

Every setting is documented in ``.env.example``. Secrets are ``SecretStr`` so that a
settings object printed into a log or an exception shows ``**********``.
"""

from __future__ import annotations

import difflib
import re
import io
import os
import stat
from collections.abc import Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from .numbers import NumberError, check_decimal

# The simulated exchange's documented demo credentials (see `tps19 exchange --help`).
SIM_DEMO_API_KEY = "tps19-demo-key"
SIM_DEMO_SECRET = "tps19-demo-secret"
# Venue ids served by the embedded simulated exchange: its Crypto.com dialect and its Binance dialect.
SIM_VENUES = ("sim", "sim-binance")


def is_sim(exchange_id: str) -> bool:
    return exchange_id.lower() in SIM_VENUES


# A duration longer than a day is a typo (or "inf"); asyncio's timers overflow long before infinity.
MAX_SECONDS = 86_400.0


def _seconds(default: float) -> Any:
    return Field(default, gt=0, le=MAX_SECONDS, allow_inf_nan=False)


def _sane(v: Decimal) -> Decimal:
    try:
        return check_decimal(v, "value")
    except NumberError as err:
        raise ValueError(err.problem) from None


# A money setting: finite, below 1e15, at most 18 decimals (1e999999 is not a cap, it is a typo).
Money = Annotated[Decimal, AfterValidator(_sane)]


class ExchangeSettings(BaseModel):
    id: str = Field("sim", description="'sim' / 'sim-binance' (embedded simulated exchange, Crypto.com or Binance "
                                       "dialect) or any ccxt exchange id")
    api_key: SecretStr | None = None
    secret: SecretStr | None = None
    password: SecretStr | None = None
    sandbox: bool = False
    # Overrides for pointing a ccxt client at another host (e.g. a standalone `tps19 exchange`).
    rest_url: str | None = None
    ws_url: str | None = None
    timeout_ms: int = Field(10_000, gt=0, le=600_000)

    @field_validator("id")
    @classmethod
    def _lower(cls, v: str) -> str:
        v = v.strip().lower()
        if not v:
            raise ValueError("must not be empty")
        return v

    @field_validator("rest_url", "ws_url")
    @classmethod
    def _url(cls, v: str | None, info: Any) -> str | None:
        if v is None or not v.strip():
            return None
        v = v.strip()
        schemes = ("http://", "https://") if info.field_name == "rest_url" else ("ws://", "wss://")
        if not v.lower().startswith(schemes):
            raise ValueError(f"must start with {' or '.join(schemes)}")
        return v

    @model_validator(mode="after")
    def _ws_needs_rest(self) -> ExchangeSettings:
        if self.ws_url and not self.rest_url:
            # REST would go to the embedded exchange and websockets elsewhere: two order books
            raise ValueError("exchange.ws_url (TPS19_EXCHANGE__WS_URL) needs exchange.rest_url "
                             "(TPS19_EXCHANGE__REST_URL): both point at one standalone `tps19 exchange`")
        return self


class SymbolsSettings(BaseModel):
    # NoDecode: "BTC/USDT,ETH/USDT" from the environment is split below, not parsed as JSON.
    watch: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["BTC/USDT", "ETH/USDT", "SOL/USDT"])
    book_depth: int = Field(50, ge=1, le=50)
    timeframe: str = "1m"

    @field_validator("timeframe")
    @classmethod
    def _known_timeframe(cls, v: str) -> str:
        from .engine.history.quality import TIMEFRAME_MS

        v = v.strip()
        if v not in TIMEFRAME_MS:
            raise ValueError(f"unknown timeframe {v[:20]!r} (known: {', '.join(TIMEFRAME_MS)})")
        return v

    @field_validator("watch", mode="before")
    @classmethod
    def _split(cls, v: object) -> object:
        if isinstance(v, str):
            text = v.strip()
            if text.startswith("["):
                import json

                try:
                    return json.loads(text)
                except ValueError:
                    raise ValueError("not a JSON list of symbols") from None
            v = [s for s in (p.strip() for p in text.split(",")) if s]
        return v

    @field_validator("watch")
    @classmethod
    def _unified(cls, v: list[str]) -> list[str]:
        out = []
        for s in v:
            s = s.strip().upper()
            if "/" not in s:
                raise ValueError(f"{s!r} is not a ccxt unified symbol like BTC/USDT")
            out.append(s)
        if not out:
            raise ValueError("at least one symbol is needed")
        return out


class DatabaseSettings(BaseModel):
    path: Path = Path("tps19.db")
    # A PostgreSQL server instead of the file: postgresql+asyncpg://USER:PASSWORD@HOST:PORT/DBNAME.
    # SecretStr: the URL may carry a password.
    url: SecretStr | None = None

    @field_validator("url")
    @classmethod
    def _server_url(cls, v: SecretStr | None) -> SecretStr | None:
        if v is None or not v.get_secret_value().strip():
            return None
        text = v.get_secret_value().strip()
        if not text.lower().startswith(("postgresql://", "postgres://", "postgresql+asyncpg://")):
            raise ValueError("must be a postgresql+asyncpg://USER@HOST:PORT/DBNAME URL (SQLite: use database.path)")
        return SecretStr(text)

    @property
    def target(self) -> str | Path:
        """What ``Database`` opens: the server URL when one is set, else the SQLite file."""
        return self.url.get_secret_value() if self.url is not None else self.path


class RiskSettings(BaseModel):
    max_order_notional: Money = Field(Decimal("10000"), gt=0)
    max_daily_orders: int = Field(500, gt=0)
    daily_loss_limit: Money = Field(Decimal("1000"), gt=0)
    max_position_notional: Money = Field(Decimal("250000"), gt=0)
    max_gross_exposure: Money = Field(Decimal("500000"), gt=0)
    max_open_orders: int = Field(100, gt=0)
    max_orders_per_minute: int = Field(60, gt=0)
    price_band_pct: Decimal = Field(Decimal("25"), gt=0, le=100, allow_inf_nan=False)
    max_drawdown_pct: Decimal = Field(Decimal("20"), gt=0, le=100, allow_inf_nan=False)
    breaker_cancel_orders: bool = True
    breaker_flatten: bool = False
    # how a strategy's target becomes a position in paper/live (engine/risk/sizing.py; backtests: --sizing)
    sizing: str = "fixed"
    sizing_params: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _sizing_rule(self) -> RiskSettings:
        from .engine.risk.sizing import Sizing

        Sizing(self.sizing, dict(self.sizing_params))  # SizingError is a ValueError: one line naming it
        return self


class FeeSettings(BaseModel):
    """Maker/taker rates (0.0004 = 0.04 %) for a venue that does not publish its own schedule."""

    maker: Money | None = Field(None, ge=0, lt=1)
    taker: Money | None = Field(None, ge=0, lt=1)


class StopsSettings(BaseModel):
    """Protective orders (docs/orders.md)."""

    # where a live stop lives: venue-native (placed on the venue with its trigger), emulated (held
    # by TPS19, sent when it triggers; protects nothing while TPS19 is down) or auto (venue-native
    # stop-losses where the ccxt client can place them; trailing stops and brackets emulated).
    # Paper mode always emulates (paper is the venue).
    placement: Literal["venue", "emulated", "auto"] = "auto"
    # what an emulated trigger watches: the trade prints ("last") or the best bid/ask ("bid_ask")
    trigger: Literal["last", "bid_ask"] = "last"
    # a strategy's every entry carries these exits in paper/live (% of the entry price; the
    # --stop-loss/--take-profit/--trailing-stop flags set them); None: not placed
    stop_loss_pct: float | None = Field(None, gt=0, lt=100, allow_inf_nan=False)
    take_profit_pct: float | None = Field(None, gt=0, lt=1_000_000, allow_inf_nan=False)
    trailing_pct: float | None = Field(None, gt=0, lt=100, allow_inf_nan=False)


class StrategySettings(BaseModel):
    # a strategy starts flat and trades only what it bought; True lets it manage the whole
    # base balance, holdings it did not buy included (`tps19 paper|live --adopt-holdings`)
    adopt_holdings: bool = False


class UISettings(BaseModel):
    refresh_hz: float = Field(15.0, gt=0, le=60, allow_inf_nan=False)
    book_levels: int = Field(15, ge=1, le=50)
    theme: str = "textual-dark"
    # the desk writes a frame from its own thread when Textual's writer thread is idle
    # (tps19/desk/frame_writer.py); False: every write through Textual's writer thread
    direct_writes: bool = True


class FeedSettings(BaseModel):
    stale_after_s: float = _seconds(5.0)
    watch_timeout_s: float = _seconds(10.0)
    reconnect_min_s: float = _seconds(0.5)
    reconnect_max_s: float = _seconds(30.0)

    @model_validator(mode="after")
    def _backoff_bounds(self) -> FeedSettings:
        if self.reconnect_min_s > self.reconnect_max_s:
            raise ValueError("reconnect_min_s must not exceed reconnect_max_s")
        return self


class SimSettings(BaseModel):
    seed: int = 19
    host: str = "127.0.0.1"
    port: int = Field(0, ge=0, le=65535, description="0 picks a free port")
    starting_balances: dict[str, Decimal] = Field(
        default_factory=lambda: {"USDT": Decimal("100000"), "BTC": Decimal("1"), "ETH": Decimal("10"), "SOL": Decimal("100")}
    )

    @field_validator("starting_balances")
    @classmethod
    def _balances(cls, v: dict[str, Decimal]) -> dict[str, Decimal]:
        out = {}
        for ccy, amount in v.items():
            code = ccy.strip().upper()
            if not code.isalnum() or len(code) > 20:
                raise ValueError(f"{ccy[:20]!r} is not a currency code")
            try:
                out[code] = check_decimal(amount, f"balance of {code}", non_negative=True)
            except NumberError as err:
                raise ValueError(str(err)) from None
        return out


class HoldingsSettings(BaseModel):
    """What the account held before TPS19 traded, as positions: ``cost_basis`` per currency (in
    the valuation currency) makes them entries at that price, so their P&L shows
    (``--cost-basis BTC=60000``; ``TPS19_HOLDINGS__COST_BASIS='{"BTC": "60000"}'``)."""

    cost_basis: dict[str, Decimal] = Field(default_factory=dict)

    @field_validator("cost_basis")
    @classmethod
    def _basis(cls, v: dict[str, Decimal]) -> dict[str, Decimal]:
        out = {}
        for ccy, price in v.items():
            code = ccy.strip().upper()
            if not code.isalnum() or len(code) > 20:
                raise ValueError(f"{ccy[:20]!r} is not a currency code")
            try:
                out[code] = check_decimal(price, f"cost basis of {code}", positive=True)
            except NumberError as err:
                raise ValueError(str(err)) from None
        return out


class LogSettings(BaseModel):
    file: Path | None = None
    summary_interval_s: float = _seconds(5.0)
    level: Literal["debug", "info", "warning", "error"] = "info"
    max_bytes: int = Field(50_000_000, ge=0, description="rotate the log file past this size; 0: never")
    backups: int = Field(5, ge=1, le=1000, description="rotated files kept (F.1 newest ... F.N oldest)")


class MLSettings(BaseModel):
    psi_warn: float = Field(0.25, gt=0, le=100, allow_inf_nan=False,
                            description="warn of drift when a feature's population stability index passes this")
    threads: int = Field(1, ge=1, le=256,
                         description="BLAS/OpenMP threads per training process (one: on a busy machine more threads "
                                     "spin against each other and cost twice the CPU; --jobs parallelises folds)")
    # the model lifecycle in paper/live (engine/ml/lifecycle.py, docs/ml.md)
    retrain_every: str | None = Field(None, description="retrain on this schedule of bar time (1d, 6h, ...); "
                                                        "None: never (--retrain-every)")
    retrain_on_drift: bool = Field(False, description="retrain when a feature's PSI passes retrain_psi (--retrain-on-drift)")
    retrain_psi: float = Field(0.5, gt=0, le=100, allow_inf_nan=False,
                               description="the largest PSI (calendar features aside) over drift_bars that triggers a "
                                           "retrain; random walks reach 0.26 over 1440 1m bars on slow features")
    drift_bars: int = Field(1440, ge=200, le=1_000_000, description="recent bars the drift trigger compares")
    retrain_window_bars: int = Field(5000, ge=300, le=10_000_000, description="the last N closed bars a retrain uses")
    retrain_folds: int = Field(3, ge=1, le=50, description="CV folds of a retrain")
    promote_after: int = Field(200, ge=4, le=1_000_000,
                               description="paired resolved decisions at which the promotion test is made (once)")
    promote_alpha: float = Field(0.05, gt=0, lt=0.5, allow_inf_nan=False,
                                 description="significance a challenger must reach to be promoted")
    auto_promote: bool = Field(False, description="promote a challenger that passes the test in the running engine "
                                                  "(--auto-promote); otherwise it is proposed")
    cluster: str | None = Field(None, description="a Dask scheduler, tcp://HOST:PORT, the retrains run on (paper/live "
                                                  "--cluster, as optimize/train --cluster); unreachable: the local "
                                                  "worker process, with a warning. None: always the local process")

    @field_validator("retrain_every")
    @classmethod
    def _every(cls, v: str | None) -> str | None:
        if v is None or not v.strip() or v.strip().lower() in ("none", "off"):
            return None
        from .durations import parse_every

        parse_every(v)
        return v.strip()

    @field_validator("cluster")
    @classmethod
    def _cluster(cls, v: str | None) -> str | None:
        if v is None or not v.strip() or v.strip().lower() in ("none", "off"):
            return None
        from .cluster_address import check_address

        return check_address(v.strip())


class MetricsSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int | None = Field(None, ge=0, le=65535, description="None: off; 0 picks a free port")


class RecordingSettings(BaseModel):
    """`--record DIR` / `tps19 record`: the background writer's batches, rotation and retention."""

    batch_rows: int = Field(5000, ge=1, le=1_000_000)
    batch_s: float = _seconds(1.0)
    rotate_mb: float = Field(64.0, gt=0, le=65536, allow_inf_nan=False)
    retention_days: int | None = Field(None, ge=1, description="None: keep every day")
    unexplained_alert_bps: float = Field(5.0, gt=0, le=10_000, allow_inf_nan=False,
                                         description="live divergence alert: unexplained share of the gap, in bp")


class ServeSettings(BaseModel):
    # `tps19 serve`'s login: required beyond loopback and always with --live (tps19/serve/login.py)
    password: SecretStr | None = None

    @field_validator("password")
    @classmethod
    def _blank_is_none(cls, v: SecretStr | None) -> SecretStr | None:
        return v if v is not None and v.get_secret_value() else None


class ApiSettings(BaseModel):
    # the control API (`--api-port`): every route needs `Authorization: Bearer <token>`
    token: SecretStr | None = None
    host: str = "127.0.0.1"
    port: int | None = Field(None, ge=0, le=65535, description="None: off; 0 picks a free port")
    # in live mode the API is read-only unless this is true: its orders are confirmed by no one
    live_orders: bool = False

    @field_validator("token")
    @classmethod
    def _blank_is_none(cls, v: SecretStr | None) -> SecretStr | None:
        return v if v is not None and v.get_secret_value() else None


class NotifySettings(BaseModel):
    # apprise URLs, comma- or space-separated; a URL may carry a token or password (SecretStr).
    # "tag=URL" limits that URL to the event classes of `tag` (see docs/operations.md).
    urls: SecretStr | None = None
    # the daily summary's time of day, HH:MM, in `timezone`; "off": none
    daily_summary_at: str = "00:00"
    timezone: str = "UTC"
    # a stream stale this long is reported (and its recovery after it)
    stale_after_s: float = _seconds(30.0)
    # one message per event key (a flapping stream, a repeated rejection) per window
    dedupe_window_s: float = _seconds(300.0)
    # messages per minute at most, every event class together (the rest are counted, not sent)
    max_per_minute: int = Field(20, ge=1, le=10_000)
    # a failed send is retried this often, with backoff (1 s, 2 s, 4 s ... at most 60 s)
    retries: int = Field(5, ge=0, le=100)

    @field_validator("urls")
    @classmethod
    def _blank_is_none(cls, v: SecretStr | None) -> SecretStr | None:
        return v if v is not None and v.get_secret_value().strip() else None

    @field_validator("daily_summary_at")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        v = v.strip().lower()
        if v == "off":
            return v
        hh, _, mm = v.partition(":")
        if not (hh.isdigit() and mm.isdigit() and len(mm) == 2 and int(hh) < 24 and int(mm) < 60):
            raise ValueError("must be HH:MM (24 h) or off")
        return f"{int(hh):02d}:{mm}"

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v.strip())
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v[:40]!r} (e.g. UTC, Europe/Berlin)") from None
        return v.strip()


class VenueKeys(BaseModel):
    """One venue's credentials when several venues run at once (TPS19_VENUES__<ID>__API_KEY /
    __SECRET / __PASSWORD; <ID> is the exchange id, '-' written as '_': SIM_BINANCE)."""

    api_key: SecretStr | None = None
    secret: SecretStr | None = None
    password: SecretStr | None = None


def venue_env_id(exchange_id: str) -> str:
    """How a venue id is written in TPS19_VENUES__<ID>__... (lower case in the settings dict)."""
    return exchange_id.strip().lower().replace("-", "_")


class ReportSettings(BaseModel):
    # equity and P&L of several venues are added up in this currency (each venue values in its
    # own; conversions are stated in the headless 'venues' line)
    currency: str = "USDT"
    # limits over every venue of a run, in that currency (each venue keeps its own risk.* caps too)
    max_gross_exposure: Money = Field(Decimal("500000"), gt=0)
    daily_loss_limit: Money = Field(Decimal("1000"), gt=0)

    @field_validator("currency")
    @classmethod
    def _code(cls, v: str) -> str:
        code = v.strip().upper()
        if not code.isalnum() or len(code) > 20:
            raise ValueError(f"{v[:20]!r} is not a currency code")
        return code


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TPS19_",
        env_nested_delimiter="__",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    exchange: ExchangeSettings = Field(default_factory=ExchangeSettings)
    symbols: SymbolsSettings = Field(default_factory=SymbolsSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    risk: RiskSettings = Field(default_factory=RiskSettings)
    fees: FeeSettings = Field(default_factory=FeeSettings)
    strategy: StrategySettings = Field(default_factory=StrategySettings)
    stops: StopsSettings = Field(default_factory=StopsSettings)
    ui: UISettings = Field(default_factory=UISettings)
    feed: FeedSettings = Field(default_factory=FeedSettings)
    sim: SimSettings = Field(default_factory=SimSettings)
    holdings: HoldingsSettings = Field(default_factory=HoldingsSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    ml: MLSettings = Field(default_factory=MLSettings)
    recording: RecordingSettings = Field(default_factory=RecordingSettings)
    venues: dict[str, VenueKeys] = Field(default_factory=dict)
    report: ReportSettings = Field(default_factory=ReportSettings)
    serve: ServeSettings = Field(default_factory=ServeSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)


class ConfigError(Exception):
    """A bad setting, worded as one line that names it."""


def format_validation_error(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e.get("loc", ())) or "settings"
        env = "TPS19_" + "__".join(str(p).upper() for p in e.get("loc", ()))
        # Never echo the offending input: it may be a secret.
        msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{loc} ({env}): {msg}")
    return "invalid setting " + "; ".join(parts)


PREFIX = "TPS19_"


def setting_names() -> list[str]:
    """Every environment name a setting answers to: TPS19_<SECTION> (JSON) and TPS19_<SECTION>__<NAME>."""
    names = []
    for section, f in Settings.model_fields.items():
        names.append(f"{PREFIX}{section.upper()}")
        model = f.annotation
        for name in getattr(model, "model_fields", {}):
            names.append(f"{PREFIX}{section.upper()}__{name.upper()}")
    return names


_VENUE_KEY = re.compile(r"^TPS19_VENUES__[A-Z0-9_]+__(API_KEY|SECRET|PASSWORD)$")


def _did_you_mean(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name.upper(), known, n=1, cutoff=0.6)
    return f": did you mean {close[0]}?" if close else " (.env.example lists every setting)"


def check_unknown(keys: Iterable[str], source: str) -> None:
    """A TPS19_ name that is no setting is an error: a mistyped risk cap must not be ignored.
    In a .env file a key without the prefix that is a setting's name is one too (the prefix was
    forgotten); other keys there belong to other tools and are left alone."""
    known = setting_names()
    known_set = set(known)
    for key in keys:
        upper = key.strip().upper()
        if upper.startswith(PREFIX):
            if upper not in known_set and not _VENUE_KEY.match(upper):
                raise ConfigError(f"unknown setting {key} in {source}{_did_you_mean(upper, known)}")
        elif source == ".env" and difflib.get_close_matches(PREFIX + upper, known, n=1, cutoff=0.9):
            raise ConfigError(f"unknown setting {key} in .env (no {PREFIX} prefix){_did_you_mean(PREFIX + upper, known)}")


def read_env_file(path: Path) -> Mapping[str, str | None]:
    """The keys and values of a .env file, or ConfigError in one line (never its content)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return {}
    except OSError as err:
        raise ConfigError(f"cannot read {path}: {err.strerror or err}") from None
    if stat.S_ISFIFO(mode):
        return {}  # a pipe can be read once, and pydantic-settings reads it
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise ConfigError(f"cannot read {path}: {err.strerror or err}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise ConfigError(f"{path} is not UTF-8 text (line {line}): save it as UTF-8") from None
    from dotenv import dotenv_values

    return dotenv_values(stream=io.StringIO(text))


def load_settings(**overrides: object) -> Settings:
    """Load settings, raising ConfigError (one line, no secrets) on a bad value, an unreadable
    .env or an unknown TPS19_ name."""
    env_file = Settings.model_config.get("env_file")
    if env_file:
        check_unknown(read_env_file(Path(str(env_file))), ".env")
    check_unknown((k for k in os.environ if k.upper().startswith(PREFIX)), "the environment")
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as err:
        raise ConfigError(format_validation_error(err)) from None
    except SettingsError as err:
        # Raised for values that are not even parseable (e.g. bad JSON); the message names the
        # field and source, never the value.
        raise ConfigError(f"invalid setting: {str(err).split(' from source')[0]}") from None
    except (OSError, UnicodeDecodeError) as err:  # .env changed between the check and the load
        raise ConfigError(f"cannot read {env_file}: {getattr(err, 'strerror', None) or type(err).__name__}") from None
