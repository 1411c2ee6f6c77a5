"""Every environment variable SPIRAL reads, in one place: secrets, endpoints and server policy.

Run settings are `RunContext` fields; the environment holds only what a run may
not choose for itself: credentials, where the databases are, and what a server
lets its clients touch. Read once per call through `environment()` (cheap: a
pydantic-settings model over `os.environ`), so tests and a server's `.env`
change it without restarting anything. `tools/` never reads the environment:
what it needs is passed in from here.
"""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ..tools.errors import InputError

OPENAI_DEFAULT_URL = "https://api.openai.com/v1"


class Environment(BaseSettings):
    """SPIRAL's environment variables (names in capitals, as the fields' aliases say)."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=True)
    """Each variable by its own name only (with `populate_by_name` the field `database_uri` also read
    `DATABASE_URI`, which `langgraph dev` sets to ":memory:", and `home` read `HOME`)."""

    openai_api_key: SecretStr | None = Field(None, alias="OPENAI_API_KEY", description="Key of the LLM/VLM server.")
    openai_base_url: str = Field("", alias="OPENAI_BASE_URL", description="The URL `OPENAI_API_KEY` is for (empty: "
                                 "OpenAI's API). The key is sent to this URL only.")
    allowed_base_urls: str = Field("", alias="SPIRAL_ALLOWED_BASE_URLS", description="Comma-separated LLM server URLs "
                                   "a client of a SPIRAL server may name as a run's `base_url` (empty: none).")
    home: str = Field("", alias="SPIRAL_HOME", description="The workspace folder (default: ./.spiral).")
    database_uri: str = Field("", alias="SPIRAL_DATABASE_URI", description="PostgreSQL for checkpoints, lessons and "
                              "traces (empty: SQLite files in the workspace).")
    artifacts_url: str = Field("", alias="SPIRAL_ARTIFACTS_URL", description="Where artifacts live: an fsspec URL "
                               "such as s3://bucket/prefix, shared by every machine (empty: the workspace's "
                               "`artifacts/` folder). Its credentials and endpoint come from fsspec's own "
                               "configuration (FSSPEC_S3_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ...).")
    generator_url: str = Field("", alias="SPIRAL_GENERATOR_URL", description="The video engine's base URL for "
                               "`--backbone remote`, e.g. http://gpu-host:8091/v1 (vLLM-Omni, SGLang Diffusion, "
                               "`spiral serve-generator`).")
    generator_api_key: SecretStr | None = Field(None, alias="SPIRAL_GENERATOR_API_KEY", description="Bearer key "
                                                "for SPIRAL_GENERATOR_URL; sent to that URL only.")
    server_token: SecretStr | None = Field(None, alias="SPIRAL_SERVER_TOKEN", description="Bearer token for the "
                                           "LangGraph servers named with --server; sent to those URLs only.")
    database_pool_size: int = Field(10, ge=1, le=1000, alias="SPIRAL_DATABASE_POOL")
    input_root: str = Field("", alias="SPIRAL_INPUT_ROOT", description="On a server: the only folder start images "
                            "may be read from by path.")
    api_tokens: str = Field("", alias="SPIRAL_API_TOKENS", description="A server's users: 'user:token,user:token'.")
    http_proxy: str = Field("", alias="HTTP_PROXY", description="Proxy for http:// LLM servers (httpx reads it).")
    https_proxy: str = Field("", alias="HTTPS_PROXY", description="Proxy for https:// LLM servers (httpx reads it).")
    all_proxy: str = Field("", alias="ALL_PROXY", description="Proxy for every LLM server (httpx reads it).")

    @field_validator("openai_base_url", "home", "database_uri", "artifacts_url", "input_root", "api_tokens", "allowed_base_urls",
                     "generator_url")
    @classmethod
    def _stripped(cls, value: str) -> str:
        return value.strip()

    def backbone_setting(self, name: str) -> str:
        """An operator setting a backbone takes (`BackboneInfo.environment`), secrets revealed for the call."""
        value = getattr(self, name)
        return value.get_secret_value() if isinstance(value, SecretStr) else (value or "")

    def allowed_urls(self) -> set[str]:
        return {same_url(u) for u in self.allowed_base_urls.split(",") if u.strip()}

    def key_for(self, base_url: str) -> str | None:
        """The API key to send to `base_url` (empty: OPENAI_BASE_URL, or OpenAI's): `OPENAI_API_KEY` when the
        URL is the one it was configured for, else None (a client never moves the key to another host)."""
        if self.openai_api_key is None:
            return None
        configured = same_url(self.openai_base_url or OPENAI_DEFAULT_URL)
        return self.openai_api_key.get_secret_value() if same_url(base_url or configured) == configured else None

    def check_for_http(self) -> None:
        """What the HTTP client would choke on later, as one line now: a key an HTTP header cannot carry, a
        proxy URL it cannot parse, a SOCKS proxy without the package that speaks SOCKS."""
        key = self.openai_api_key.get_secret_value() if self.openai_api_key else ""
        if key and not (key.isascii() and key.isprintable() and key.strip() == key and " " not in key):
            raise InputError("OPENAI_API_KEY holds characters an HTTP header cannot carry (a space, a newline or "
                             "non-ASCII): set it again, copied without them")
        for name, value in (("HTTP_PROXY", self.http_proxy), ("HTTPS_PROXY", self.https_proxy),
                            ("ALL_PROXY", self.all_proxy)):
            if value:
                _check_proxy(name, value)


def same_url(url: str) -> str:
    """A URL in one spelling: scheme and host lower-case, default port dropped, no trailing slash."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:  # not a number: compare the URL as written
        return url.strip().rstrip("/")
    if port and not (parts.scheme == "https" and port == 443 or parts.scheme == "http" and port == 80):
        host = f"{host}:{port}"
    return f"{parts.scheme.lower()}://{host}{parts.path.rstrip('/')}"


def _check_proxy(name: str, value: str) -> None:
    parts = urlsplit(value)
    try:
        parts.port
    except ValueError:
        raise InputError(f"{name}={value[:60]!r} is not a proxy URL (its port is not a number); fix or unset it") from None
    if parts.scheme not in ("http", "https", "socks5", "socks5h") or not parts.hostname:
        raise InputError(f"{name}={value[:60]!r} is not a proxy URL like http://host:3128 or socks5://host:1080; "
                         "fix or unset it")
    if parts.scheme.startswith("socks"):
        try:
            import socksio  # noqa: F401
        except ImportError:
            raise InputError(f"{name} is a SOCKS proxy, which needs the socksio package: pip install "
                             "'httpx[socks]', or use an http:// proxy") from None


DATABASE_ENV = "SPIRAL_DATABASE_URI"
"""postgresql://user:password@host:5432/db: checkpoints, lessons and traces go there instead of the workspace."""


def database_uri() -> str:
    """The PostgreSQL URL from the environment ('' when unset); one line when it is not one."""
    uri = environment().database_uri
    if uri and not uri.startswith(("postgresql://", "postgres://")):
        raise InputError(f"{DATABASE_ENV} must be a PostgreSQL URL like postgresql://user:password@host:5432/db "
                         f"(got {redacted(uri)[:60]!r}); unset it to keep checkpoints in the workspace")
    return uri


def redacted(uri: str) -> str:
    """The URI without its password, for messages."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", uri)


def spiral_home() -> str:
    """`SPIRAL_HOME` alone ('' when unset), read on its own: every RunContext's default workspace asks for it."""
    return os.environ.get("SPIRAL_HOME", "").strip()


def launcher_rank() -> str | None:
    """`LOCAL_RANK`, which a multi-process launcher (accelerate, torchrun) sets for each process."""
    return os.environ.get("LOCAL_RANK")


_READ: dict[tuple[str | None, ...], Environment] = {}
_NAMES = tuple((info.alias or name).upper() for name, info in Environment.model_fields.items())


def environment() -> Environment:
    """The environment as it is now; one line naming the variable when a value does not fit.

    Read once per distinct set of values: pydantic-settings takes ~1 ms per read and the loop asks at every
    step, while a test or a server that changes a variable gets the new value at its next call."""
    key = tuple(os.environ.get(name) for name in _NAMES)
    found = _READ.get(key)
    if found is not None:
        return found
    try:
        found = Environment()
    except ValidationError as exc:
        raise _one_line(exc) from None
    if len(_READ) > 64:
        _READ.clear()
    _READ[key] = found
    return found


def _one_line(exc: ValidationError) -> InputError:
    """The first bad value, naming its variable."""
    error = exc.errors()[0]
    field = str(error["loc"][0]) if error["loc"] else ""
    info = Environment.model_fields.get(field)
    name = info.alias if info is not None and info.alias else field
    return InputError(f"{name}: {error['msg']}")
