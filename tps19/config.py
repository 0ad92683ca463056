"""Configuration: environment (prefix ``TPS19_``, nested with ``__``) and ``.env``.

Every setting is documented in ``.env.example``. Secrets are ``SecretStr`` so that a
settings object printed into a log or an exception shows ``**********``.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

# The simulated exchange's documented demo credentials (see `tps19 exchange --help`).
SIM_DEMO_API_KEY = "tps19-demo-key"
SIM_DEMO_SECRET = "tps19-demo-secret"


class ExchangeSettings(BaseModel):
    id: str = Field("sim", description="'sim' (embedded simulated exchange) or any ccxt exchange id")
    api_key: SecretStr | None = None
    secret: SecretStr | None = None
    password: SecretStr | None = None
    sandbox: bool = False
    # Overrides for pointing a ccxt client at another host (e.g. a standalone `tps19 exchange`).
    rest_url: str | None = None
    ws_url: str | None = None
    timeout_ms: int = Field(10_000, gt=0)

    @field_validator("id")
    @classmethod
    def _lower(cls, v: str) -> str:
        v = v.strip().lower()
        if not v:
            raise ValueError("must not be empty")
        return v


class SymbolsSettings(BaseModel):
    # NoDecode: "BTC/USDT,ETH/USDT" from the environment is split below, not parsed as JSON.
    watch: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["BTC/USDT", "ETH/USDT", "SOL/USDT"])
    book_depth: int = Field(50, ge=1, le=50)
    timeframe: str = "1m"

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


class RiskSettings(BaseModel):
    max_order_notional: Decimal = Field(Decimal("10000"), gt=0)
    max_daily_orders: int = Field(500, gt=0)
    daily_loss_limit: Decimal = Field(Decimal("1000"), gt=0)
    max_position_notional: Decimal = Field(Decimal("250000"), gt=0)


class UISettings(BaseModel):
    refresh_hz: float = Field(15.0, gt=0, le=60)
    book_levels: int = Field(15, ge=1, le=50)
    theme: str = "textual-dark"


class FeedSettings(BaseModel):
    stale_after_s: float = Field(5.0, gt=0)
    watch_timeout_s: float = Field(10.0, gt=0)
    reconnect_min_s: float = Field(0.5, gt=0)
    reconnect_max_s: float = Field(30.0, gt=0)


class SimSettings(BaseModel):
    seed: int = 19
    host: str = "127.0.0.1"
    port: int = Field(0, ge=0, le=65535, description="0 picks a free port")
    starting_balances: dict[str, Decimal] = Field(
        default_factory=lambda: {"USDT": Decimal("100000"), "BTC": Decimal("1"), "ETH": Decimal("10"), "SOL": Decimal("100")}
    )


class LogSettings(BaseModel):
    file: Path | None = None
    summary_interval_s: float = Field(5.0, gt=0)
    level: Literal["debug", "info", "warning", "error"] = "info"


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
    ui: UISettings = Field(default_factory=UISettings)
    feed: FeedSettings = Field(default_factory=FeedSettings)
    sim: SimSettings = Field(default_factory=SimSettings)
    log: LogSettings = Field(default_factory=LogSettings)


class ConfigError(Exception):
    """A bad setting, worded as one line that names it."""


def format_validation_error(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e.get("loc", ())) or "settings"
        env = "TPS19_" + "__".join(str(p).upper() for p in e.get("loc", ()))
        # Never echo the offending input: it may be a secret.
        parts.append(f"{loc} ({env}): {e.get('msg', 'invalid')}")
    return "invalid setting " + "; ".join(parts)


def load_settings(**overrides: object) -> Settings:
    """Load settings, raising ConfigError (one line, no secrets) on a bad value."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as err:
        raise ConfigError(format_validation_error(err)) from None
    except SettingsError as err:
        # Raised for values that are not even parseable (e.g. bad JSON); the message names the
        # field and source, never the value.
        raise ConfigError(f"invalid setting: {str(err).split(' from source')[0]}") from None
