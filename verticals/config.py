"""Settings: every core ``VERTICALS_*`` environment variable, typed and validated, in one place.

:class:`Settings` (pydantic-settings, prefix ``VERTICALS_``) declares each core setting with its type,
default and a one-line description; docs/configuration.md documents every one of them (a test fails
when one is missing there). :func:`settings` builds it from the environment *when called* (nothing is
cached, so a changed environment, e.g. a test's ``monkeypatch.setenv``, is seen by the next call) and
turns a bad value into one :class:`SettingsError` that names the variable, what it must be and what
it got. An empty variable counts as unset (``VERTICALS_LOAD_PLUGINS`` excepted: empty loads none).

Plugin settings (``VERTICALS_SURROGATE_KEY``, ``VERTICALS_TESTGEN_CACHE``...) are not here: each
plugin reads and documents its own (its README).

The helpers :func:`data_dir`, :func:`database_url`, :func:`broker_url` and :func:`max_attempts` are
kept for their callers.
"""

from __future__ import annotations

import functools
import os
import typing
from pathlib import Path
from typing import Any, Literal

import annotated_types
import platformdirs
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PREFIX = "VERTICALS_"
KEEP_EMPTY = frozenset({"load_plugins"})  # an empty value means something ("load no plugin")
DEVICE_KINDS = ("cpu", "cuda", "mps", "xpu", "npu", "hpu", "meta")
RUNTIME_CHOICES = ("auto", "torch", "onnx", "onnx-int8")


class SettingsError(ValueError):
    """One or more ``VERTICALS_*`` variables hold a value their setting does not take."""


class Settings(BaseSettings):
    """The core's settings, each read from ``VERTICALS_<FIELD NAME IN CAPITALS>``."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore", frozen=True)

    # storage and execution
    home: Path | None = Field(
        default=None, description="Data folder: the SQLite database, secret.key, models/ (default: the platform's "
        "user data dir, e.g. ~/.local/share/verticals).")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL of the job database (default: sqlite:///<home>/verticals.db).")
    broker_url: str | None = Field(
        default=None, description="Celery broker, e.g. redis://127.0.0.1:6379/0: jobs run on workers (default: the "
        "local executor, in process).")
    max_attempts: int = Field(
        default=3, ge=1, description="Starts of an item before it is failed, so a poison item cannot loop.")
    visibility_timeout: int | None = Field(
        default=None, ge=1, description="Seconds before Redis hands an unacknowledged chunk to another worker "
        "(default: derived per queue, 4 x its longest expected chunk, at least 5 minutes; docs/distributed.md).")
    preload: bool = Field(
        default=False, description="Workers load the models of their queue's tasks at start (`verticals worker "
        "--preload` sets it).")
    worker_heartbeat_s: float = Field(
        default=2.0, gt=0, description="How often each worker process reports itself to the fleet (`verticals "
        "workers`); a worker not heard of for three of them is gone from it.")
    worker_queue: str | None = Field(
        default=None, description="The queue a worker serves (`verticals worker --queue` sets it).")

    # plugins
    load_plugins: str | None = Field(
        default=None, description="Comma-separated allowlist of plugin entry-point names (unset: all; empty: none).")
    strict_plugins: bool = Field(
        default=False, description="A plugin problem is an error instead of a quarantine.")

    # models
    models: str | None = Field(
        default=None, description="Model source overrides: name=/path/or/hub-id;other=... (win over everything).")
    model_store: Path | None = Field(
        default=None, description="Folder of fine-tuned model versions (default: <home>/models).")
    model_memory_mb: float | None = Field(
        default=None, ge=0, description="Memory budget of the loaded models of one process; least recently used ones "
        "are evicted beyond it (default: unlimited).")
    device: str = Field(
        default="auto", description="auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps.")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        default="auto", description="Model weights precision: auto, fp32, bf16 or fp16.")
    runtime: Literal["auto", "torch", "onnx", "onnx-int8"] = Field(
        default="auto", description="Runtime of encoders and classifiers: auto (the fastest variant `verticals "
        "models optimize` kept for the weights on this machine, else torch), torch, onnx or onnx-int8 (forced).")
    runtimes: str | None = Field(
        default=None, description="Per-model runtime, winning over VERTICALS_RUNTIME: name=runtime;other=runtime.")

    # API server and client
    api_key: SecretStr | None = Field(
        default=None, description="The SDK client's API key for a remote server (`verticals.Client(url)`).")
    api_threads: int = Field(
        default=2, ge=1, description="Worker threads of the API server's local executor (`verticals serve "
        "--threads` wins).")
    api_jobs_per_tenant: int = Field(
        default=1, ge=1, description="Chunks of one tenant's jobs the API server's local executor runs at once; "
        "tenants take turns chunk by chunk, so with more threads than this one tenant's hung or heavy jobs "
        "cannot hold every thread.")
    api_max_active_jobs: int = Field(
        default=100, ge=1, description="Unfinished (queued or running) jobs one tenant may have; past it, creating "
        "a job answers 429 with Retry-After.")
    api_max_body_mb: int = Field(default=16, ge=1, description="Largest JSON request body, in MiB (413 beyond).")
    api_max_upload_mb: int = Field(default=512, ge=1, description="Largest uploaded input file, in MiB (413 beyond).")
    api_max_job_items: int = Field(
        default=10_000, ge=1, description="Most items one JSON job creation (or evaluation request) takes.")
    api_predict_max_items: int = Field(default=64, ge=1, description="Most items one POST /v1/predict takes.")
    api_predict_concurrency: int = Field(
        default=2, ge=1, description="Predict requests the server runs at once (the others wait).")

    # usage and cost (docs/operations.md)
    prices: str | None = Field(
        default=None, description="The operator's price table, turning metered usage into cost: a price per model "
        "second for each device kind and one per 1,000 items, e.g. 'cpu=0.00002,cuda=0.0004,items_1k=0.01' "
        "(unset: no cost shown).")
    price_currency: str = Field(default="USD", description="The unit of VERTICALS_PRICES, shown next to costs.")

    # files on the server that job parameters name (docs/security.md: server files)
    data_roots: str | None = Field(
        default=None, description="Folders (separated by ':') inside which API tenants may name server files in "
        "task parameters (terms lists, answer banks, model folders); unset: API tenants name none. The CLI names "
        "any file.")
    data_max_file_mb: int = Field(
        default=16, ge=1, description="Largest server file a task parameter reads, in MiB (CLI and API).")
    data_max_folder_mb: int = Field(
        default=4096, ge=1, description="Largest server folder (e.g. a model) a task parameter names, in MiB.")

    # webhooks
    webhook_allow_private: bool = Field(
        default=False, description="Accept webhook URLs that resolve to private, loopback or link-local addresses.")
    webhook_max_attempts: int = Field(
        default=8, ge=1, description="Deliveries of one webhook event before it is given up.")
    webhook_backoff_s: float = Field(
        default=5.0, ge=0, description="Delay before the first webhook retry, doubled each retry (at most an hour).")
    webhook_poll_s: float = Field(default=1.0, gt=0, description="How often the API server looks for due deliveries.")

    # secrets
    secret_key: SecretStr | None = Field(
        default=None, description="The server key (Fernet) that encrypts secret task parameters.")
    secret_key_file: Path | None = Field(
        default=None,
        description="File holding the server key (default: <home>/secret.key, created 0600 on first use).")

    # code jail
    jail_uid: int = Field(default=65534, ge=1, description="Host uid a root caller's jail runs as (65534: nobody).")
    jail_max_memory_mb: int = Field(
        default=4096, ge=1, description="Server maximum of a jailed process's address space.")
    jail_max_cpu_seconds: int = Field(default=300, ge=1, description="Server maximum of a jailed process's CPU time.")
    jail_max_wall_seconds: float = Field(default=600.0, gt=0, description="Server maximum of a jailed run's wall time.")
    jail_max_processes: int = Field(
        default=256, ge=1, description="Server maximum of the jail uid's processes and threads.")
    jail_max_file_size_mb: int = Field(
        default=256, ge=1, description="Server maximum of a file a jailed process writes.")
    jail_max_open_files: int = Field(default=1024, ge=1, description="Server maximum of a jailed process's open files.")
    jail_max_tmp_mb: int = Field(default=1024, ge=1, description="Server maximum of the jail's private /tmp.")
    jail_max_output_mb: int = Field(
        default=64, ge=1, description="Server maximum of the stdout (and of the stderr) a jailed run's host keeps.")
    jail_max_disk_mb: int = Field(
        default=4096, ge=1, description="Server maximum of what a jailed run may leave in its writable folder.")
    jail_max_cpus: float = Field(
        default=2.0, gt=0, description="Server maximum of a jailed run's CPUs: CPU-seconds per wall second, all its "
                                       "processes together (cgroup cpu controller).")
    jail_cgroup: str | None = Field(
        default=None, description="Parent cgroup folder(s) of the per-run cgroups (':'-separated for cgroup v1; "
                                  "'off': none; unset: the caller's own cgroups).")

    @model_validator(mode="before")
    @classmethod
    def _empty_is_unset(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {key: value for key, value in data.items()
                    if not (isinstance(value, str) and not value.strip() and key not in KEEP_EMPTY)}
        return data

    @field_validator("device", "precision", "runtime", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        kind, _, index = value.partition(":")
        if value != "auto" and (kind not in DEVICE_KINDS or (index and not index.isdigit())):
            raise ValueError("auto, cpu, cuda, cuda:N or mps")
        return value

    @field_validator("runtimes")
    @classmethod
    def _known_runtimes(cls, value: str | None) -> str | None:
        for part in (value or "").replace(",", ";").split(";"):
            name, sep, choice = part.partition("=")
            if part.strip() and (not sep or not name.strip() or choice.strip().lower() not in RUNTIME_CHOICES):
                raise ValueError("MODEL=RUNTIME pairs separated by ';', RUNTIME one of " + ", ".join(RUNTIME_CHOICES))
        return value

    @field_validator("prices")
    @classmethod
    def _price_table(cls, value: str | None) -> str | None:
        parse_prices(value)
        return value

    @property
    def price_table(self) -> dict[str, float]:
        """``prices`` as {device kind or ``items_1k``: price} (empty: no prices set)."""
        return parse_prices(self.prices)

    @property
    def plugin_allowlist(self) -> set[str] | None:
        """``load_plugins`` as a set of names (``None``: every installed plugin)."""
        if self.load_plugins is None:
            return None
        return {name.strip() for name in self.load_plugins.split(",") if name.strip()}

    @property
    def data_dir(self) -> Path:
        """``home`` or the platform's user data dir (not created here: see :func:`data_dir`)."""
        return self.home.expanduser() if self.home else Path(platformdirs.user_data_dir("verticals", appauthor=False))


PRICE_KEYS = (*DEVICE_KINDS, "items_1k")


def parse_prices(value: str | None) -> dict[str, float]:
    """``cpu=0.00002,cuda=0.0004,items_1k=0.01`` -> {"cpu": 2e-05, ...}; ``ValueError`` saying what it takes."""
    table: dict[str, float] = {}
    for part in (value or "").replace(";", ",").split(","):
        if not part.strip():
            continue
        name, sep, price = part.partition("=")
        name = name.strip().lower()
        try:
            amount = float(price)
        except ValueError:
            amount = -1.0
        if not sep or name not in PRICE_KEYS or not amount >= 0 or amount == float("inf"):
            raise ValueError("KEY=PRICE pairs separated by ',', KEY a device kind (" + ", ".join(DEVICE_KINDS)
                             + ": the price of one model second) or items_1k (the price of 1,000 items), PRICE a "
                             "number >= 0")
        table[name] = amount
    return table


def env_name(field: str) -> str:
    """The environment variable of a :class:`Settings` field (``max_attempts`` -> ``VERTICALS_MAX_ATTEMPTS``)."""
    return PREFIX + field.upper()


def _expects(field: str) -> str | None:
    """What a field takes, in words ("an integer >= 1"), from its type and constraints."""
    info = Settings.model_fields[field]
    annotation = info.annotation
    args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
    base = args[0] if typing.get_origin(annotation) is not Literal and args else annotation
    if typing.get_origin(base) is Literal:
        return "one of " + ", ".join(str(choice) for choice in typing.get_args(base))
    if base is bool:
        return "a boolean (1/0, true/false, yes/no, on/off)"
    noun = "an integer" if base is int else "a number" if base is float else None
    if noun is None:
        return None
    for constraint in info.metadata:
        if isinstance(constraint, annotated_types.Ge):
            return f"{noun} >= {constraint.ge}"
        if isinstance(constraint, annotated_types.Gt):
            return f"{noun} > {constraint.gt}"
    return noun


def _explain(error: ValidationError) -> str:
    problems = []
    for detail in error.errors():
        field = str(detail["loc"][0]) if detail["loc"] else ""
        if field not in Settings.model_fields:
            problems.append(detail["msg"])
            continue
        expects = _expects(field) or detail["msg"].removeprefix("Value error, ")
        secret = Settings.model_fields[field].annotation in (SecretStr, SecretStr | None)
        got = "" if secret else f", got {detail.get('input')!r}"
        problems.append(f"{env_name(field)} must be {expects}{got}")
    return "; ".join(problems)


def _snapshot() -> tuple[tuple[str, str], ...]:
    return tuple(sorted((key, value) for key, value in os.environ.items() if key.upper().startswith(PREFIX)))


@functools.lru_cache(maxsize=8)
def _build(snapshot: tuple[tuple[str, str], ...]) -> Settings:
    try:
        return Settings()
    except ValidationError as error:
        raise SettingsError(_explain(error)) from None


def settings() -> Settings:
    """The settings as the environment holds them now (read at each call).

    Building one costs about a millisecond, so the (frozen) object is reused while the ``VERTICALS_*``
    variables are unchanged; any change to them gives a new one. Raises :class:`SettingsError`
    naming every variable whose value its setting does not take.
    """
    return _build(_snapshot())


def data_dir() -> Path:
    """Where verticals keeps its SQLite database by default (``VERTICALS_HOME`` overrides); created 0700."""
    path = settings().data_dir
    path.mkdir(mode=0o700, parents=True, exist_ok=True)  # a new data dir is its owner's only
    return path


def database_url() -> str:
    """``VERTICALS_DATABASE_URL``, or an SQLite file in the data dir."""
    return settings().database_url or f"sqlite:///{data_dir() / 'verticals.db'}"


def broker_url() -> str | None:
    """``VERTICALS_BROKER_URL`` (e.g. ``redis://127.0.0.1:6379/0``): selects the Celery executor."""
    return settings().broker_url


def max_attempts() -> int:
    """How many times an item may be started before it is failed (``VERTICALS_MAX_ATTEMPTS``, default 3)."""
    return settings().max_attempts
