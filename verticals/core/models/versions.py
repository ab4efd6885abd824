"""The local model store: versions of fine-tuned models, and which one is promoted.

Layout under ``VERTICALS_HOME/models`` (``VERTICALS_MODEL_STORE`` overrides the folder)::

    models/
      finance.sentiment/
        v1/   verticals_head.json, head.safetensors, adapter/ (LoRA) or encoder/ (full), version.json
        v2/
        state.json   {"promoted": "v2", "history": ["v1", "v2"]}

A version folder is written under a temporary name and renamed into place only
when it is complete, so a failed or cancelled training run leaves nothing behind.
``state.json`` is replaced atomically. Resolution (``verticals.core.models.host``)
serves the promoted version of a spec before its local/hub/packaged sources;
a user override (``VERTICALS_MODELS``) still wins.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from verticals.config import data_dir, settings

VERSION_FILE = "version.json"
STATE_FILE = "state.json"
_VERSION = re.compile(r"^v(\d+)$")
_SPEC_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class ModelStoreError(ValueError):
    """A version or spec that the store does not hold, or a bad request about one."""


def store_root() -> Path:
    """``VERTICALS_MODEL_STORE``, or ``models/`` in the data dir (``VERTICALS_HOME``). Not created here."""
    current = settings()
    if current.model_store:
        return current.model_store.expanduser()
    if current.home:
        return current.home.expanduser() / "models"
    return data_dir() / "models"


@dataclass(frozen=True)
class ModelVersion:
    spec: str
    version: str
    path: Path
    meta: dict[str, Any]
    promoted: bool = False

    @property
    def number(self) -> int:
        return int(_VERSION.match(self.version).group(1))  # type: ignore[union-attr]

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())


@dataclass
class PendingVersion:
    path: Path
    meta: dict[str, Any]
    version: str | None = None


def _check_spec(spec: str) -> str:
    if not _SPEC_NAME.match(spec or ""):
        raise ModelStoreError(f"bad model spec name {spec!r}")
    return spec


class ModelStore:
    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root is not None else store_root()

    # reading ----------------------------------------------------------------

    def specs(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and _SPEC_NAME.match(p.name))

    def state(self, spec: str) -> dict[str, Any]:
        path = self.root / _check_spec(spec) / STATE_FILE
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"promoted": None, "history": []}

    def versions(self, spec: str | None = None) -> list[ModelVersion]:
        out: list[ModelVersion] = []
        for name in [spec] if spec else self.specs():
            folder = self.root / _check_spec(name)
            if not folder.is_dir():
                continue
            promoted = self.state(name).get("promoted")
            for path in folder.iterdir():
                if path.is_dir() and _VERSION.match(path.name) and (path / VERSION_FILE).exists():
                    meta = json.loads((path / VERSION_FILE).read_text(encoding="utf-8"))
                    out.append(ModelVersion(name, path.name, path, meta, path.name == promoted))
        return sorted(out, key=lambda v: (v.spec, v.number))

    def get(self, spec: str, version: str) -> ModelVersion:
        for candidate in self.versions(spec):
            if candidate.version == version:
                return candidate
        known = ", ".join(v.version for v in self.versions(spec)) or "none"
        raise ModelStoreError(f"model {spec!r} has no stored version {version!r} (stored: {known})")

    def promoted(self, spec: str) -> ModelVersion | None:
        """The promoted version of ``spec``, or None (then resolution goes on to the spec's own sources)."""
        if not _SPEC_NAME.match(spec or ""):
            return None
        version = self.state(spec).get("promoted")
        if not version:
            return None
        path = self.root / spec / version
        if not (path / VERSION_FILE).exists():
            return None
        meta = json.loads((path / VERSION_FILE).read_text(encoding="utf-8"))
        return ModelVersion(spec, version, path, meta, True)

    # writing ----------------------------------------------------------------

    @contextlib.contextmanager
    def new_version(self, spec: str, meta: dict[str, Any]) -> Iterator[PendingVersion]:
        """Yield a :class:`PendingVersion` (a temporary folder to fill); on success it becomes ``spec/vN``
        (``pending.version`` and ``pending.path`` then name it; ``meta`` is written as ``version.json``).

        On any exception the temporary folder is removed and nothing is stored.
        """
        folder = self.root / _check_spec(spec)
        folder.mkdir(parents=True, exist_ok=True)
        temp = Path(tempfile.mkdtemp(prefix=".incoming-", dir=folder))
        try:
            pending = PendingVersion(temp, meta)
            yield pending
            meta = pending.meta
            while True:
                number = max((v.number for v in self.versions(spec)), default=0) + 1
                version = f"v{number}"
                meta = {**meta, "spec": spec, "version": version}
                (temp / VERSION_FILE).write_text(json.dumps(meta, indent=2, default=str) + "\n", encoding="utf-8")
                try:
                    os.rename(temp, folder / version)  # atomic; fails if another run took this number
                except OSError:
                    if (folder / version).exists():
                        continue
                    raise
                pending.version, pending.path = version, folder / version
                break
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)
            raise

    def _write_state(self, spec: str, state: dict[str, Any]) -> None:
        folder = self.root / spec
        handle, temp = tempfile.mkstemp(prefix=".state-", dir=folder)
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(state, stream, indent=2)
        os.replace(temp, folder / STATE_FILE)

    def promote(self, spec: str, version: str) -> ModelVersion:
        chosen = self.get(spec, version)
        state = self.state(spec)
        history = [v for v in state.get("history", []) if v != version] + [version]
        self._write_state(spec, {"promoted": version, "history": history})
        return ModelVersion(spec, version, chosen.path, chosen.meta, True)

    def rollback(self, spec: str) -> ModelVersion | None:
        """Un-promote the current version; the one promoted before it (if any, and still stored) takes over."""
        state = self.state(spec)
        current = state.get("promoted")
        if not current:
            raise ModelStoreError(f"model {spec!r} has no promoted version to roll back")
        history = [v for v in state.get("history", []) if v != current]
        stored = {v.version for v in self.versions(spec)}
        while history and history[-1] not in stored:
            history.pop()
        previous = history[-1] if history else None
        self._write_state(spec, {"promoted": previous, "history": history})
        return self.promoted(spec)

    def delete(self, spec: str, version: str) -> None:
        chosen = self.get(spec, version)
        if chosen.promoted:
            raise ModelStoreError(f"{spec} {version} is promoted: roll it back first")
        shutil.rmtree(chosen.path)
