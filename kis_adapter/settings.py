"""
Credentials and endpoints from the environment or a ``.env`` file (pydantic-settings).

Secrets live here only, as `SecretStr`: they never enter a Nautilus config, a repr or a log line.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic import PositiveFloat
from pydantic import SecretStr
from pydantic import ValidationError
from pydantic_settings import BaseSettings
from pydantic_settings import SettingsConfigDict

from kis_adapter.constants import DEFAULT_MASTER_URL
from kis_adapter.constants import DEFAULT_REST_URL
from kis_adapter.constants import DEFAULT_STALL_TIMEOUT_SECS
from kis_adapter.constants import DEFAULT_WS_URL
from kis_adapter.errors import ConfigError
from kis_adapter.redaction import MIN_SECRET_LENGTH


class KISSettings(BaseSettings):
    """
    KIS_APP_KEY, KIS_APP_SECRET, KIS_CUSTTYPE, KIS_WS_URL, KIS_REST_URL, KIS_STALL_TIMEOUT,
    KIS_MASTER_URL (the stock-futures master file), KIS_KRX_CALENDAR_FILE (calendar overrides, TOML),
    KIS_CREDENTIALS_FILE (several app keys, TOML: one [[app_keys]] table per key; `kis_adapter.credentials`).
    """

    model_config = SettingsConfigDict(
        env_prefix="KIS_", env_file=".env", extra="ignore", hide_input_in_errors=True
    )

    app_key: SecretStr | None = None
    app_secret: SecretStr | None = None
    custtype: Literal["P", "B"] = "P"
    ws_url: str = Field(default=DEFAULT_WS_URL, pattern=r"^wss?://\S+$")
    rest_url: str = Field(default=DEFAULT_REST_URL, pattern=r"^https?://\S+$")
    stall_timeout: PositiveFloat = DEFAULT_STALL_TIMEOUT_SECS
    master_url: str = Field(default=DEFAULT_MASTER_URL, pattern=r"^(https?|file)://\S+$")
    krx_calendar_file: str | None = None
    credentials_file: str | None = None

    def credentials(self) -> tuple[str, str]:
        """Return ``(app_key, app_secret)``; raise `ConfigError` naming what is missing."""
        missing = [
            name
            for name, value in (("KIS_APP_KEY", self.app_key), ("KIS_APP_SECRET", self.app_secret))
            if not value or not value.get_secret_value().strip()
        ]
        if missing:
            raise ConfigError(f"{' and '.join(missing)} not set: put them in the environment or in .env")
        assert self.app_key is not None and self.app_secret is not None
        key, secret = self.app_key.get_secret_value().strip(), self.app_secret.get_secret_value().strip()
        short = [
            name
            for name, v in (("KIS_APP_KEY", key), ("KIS_APP_SECRET", secret))
            if len(v) < MIN_SECRET_LENGTH
        ]
        if short:  # no real KIS value is that short, and a short one could not be redacted from logs
            raise ConfigError(
                f"{' and '.join(short)} {'is' if len(short) == 1 else 'are'} shorter than "
                f"{MIN_SECRET_LENGTH} characters: not a KIS app key / secret (36 and 180 characters)"
            )
        return key, secret


def load_settings(**overrides: object) -> KISSettings:
    """Load settings; a bad value becomes one `ConfigError` line naming the variable, never its value."""
    try:
        return KISSettings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        error = exc.errors()[0]
        field = "_".join(str(part) for part in error.get("loc", ())) or "settings"
        raise ConfigError(f"invalid KIS_{field.upper()}: {error.get('msg', 'invalid value')}") from None


class CalendarSettings(BaseSettings):
    """KIS_KRX_CALENDAR_FILE alone: what `backtest` and `sweep` read (they need no credentials or URLs)."""

    model_config = SettingsConfigDict(
        env_prefix="KIS_", env_file=".env", extra="ignore", hide_input_in_errors=True
    )

    krx_calendar_file: str | None = None


def configure_calendar_from_environment() -> None:
    """`configure_calendar` for commands that must not depend on the other KIS_* values being valid."""
    try:
        settings = CalendarSettings()
    except ValidationError:  # pragma: no cover - a str field cannot fail validation
        raise ConfigError("invalid KIS_KRX_CALENDAR_FILE") from None
    configure_calendar(settings)


def configure_calendar(settings: KISSettings | CalendarSettings) -> None:
    """Apply ``KIS_KRX_CALENDAR_FILE`` (closures and late opens the KRX calendar does not know yet)."""
    from kis_adapter import krx

    try:
        krx.configure(settings.krx_calendar_file)
    except krx.CalendarError as exc:
        raise ConfigError(f"invalid KIS_KRX_CALENDAR_FILE: {exc}") from None
