"""Where a model's weights come from: resolution of a :class:`~verticals.contract.ModelSpec`.

Resolution order for a :class:`ModelSpec` (first that serves wins):

1. **override**: ``VERTICALS_MODELS="name=/path/or/hub-id;other=..."`` (or the
   ``overrides`` given to :class:`ModelHost`); ``name=name@v2`` names a version of
   the local model store. An override that cannot be served is an error: the host
   never silently falls back from what a user asked for. This is how a user asks
   for a hub model.
2. **store**: the version promoted in the local model store
   (``verticals models promote``; see :mod:`verticals.core.models.versions`).
3. **local**: ``spec.local_path`` when that folder exists.
4. **packaged**: weights that an installed Python package ships, located with
   ``importlib.util.find_spec`` (the package is never imported).
5. **hub**: ``spec.hub_id`` when the Hugging Face cache already holds it, or
   when the hub can be reached (skipped when ``HF_HUB_OFFLINE=1``): only for a
   spec that nothing installed serves.

The rule: **a run gives the same answer online and offline**. Weights that are installed (a promoted version,
a local folder, packaged weights) come before the hub, so the network never decides which model answers; the
hub serves a spec only when nothing installed does (then offline is an error naming the sources, never a
different model), or when the user names a hub model (an override). When nothing serves,
:class:`ModelUnavailable` lists every source tried and why.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from verticals.contract import ModelSpec, Packaged


@dataclass(frozen=True)
class ResolvedSource:
    """Where a model's weights were found: recorded as provenance on every result."""

    kind: Literal["override", "store", "local", "hub", "packaged"]
    path: Path
    reference: str
    revision: str | None = None
    gguf_file: str | None = None
    version: str | None = None

    def provenance(self) -> dict[str, Any]:
        out = {"source": self.kind, "reference": self.reference, "revision": self.revision}
        if self.version:
            out["version"] = self.version
        return out


class ModelUnavailable(RuntimeError):
    """No source could serve a model; ``attempts`` says what was tried and why not."""

    def __init__(self, name: str, attempts: list[tuple[str, str]]):
        self.name = name
        self.attempts = attempts
        lines = [f"model {name!r} could not be loaded from any source. Tried, in order:"]
        lines += [f"  - {source}: {why}" for source, why in attempts]
        lines.append(
            "Fix: install the package that ships it, make the hub reachable, or point "
            f"VERTICALS_MODELS='{name}=/path/to/model' at a local copy."
        )
        super().__init__("\n".join(lines))


def parse_overrides(text: str | None) -> dict[str, str]:
    """Parse ``name=value;name2=value2`` (``,`` works too) into a dict."""
    overrides: dict[str, str] = {}
    for part in (text or "").replace(",", ";").split(";"):
        part = part.strip()
        if not part:
            continue
        name, sep, value = part.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise ValueError(f"bad model override {part!r}: expected NAME=PATH_OR_HUB_ID")
        overrides[name.strip()] = value.strip()
    return overrides


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}


def _from_hub(repo_id: str, revision: str | None, gguf_file: str | None) -> tuple[Path, str | None]:
    """Return (snapshot folder, commit) from the local cache, or download when online."""
    from huggingface_hub import snapshot_download

    patterns = ["*.json", "*.safetensors", "*.txt", "*.model", "tokenizer*", "*.tiktoken"]
    if gguf_file:
        patterns = ["*.json", "tokenizer*", gguf_file]
    try:
        folder = snapshot_download(repo_id, revision=revision, local_files_only=True, allow_patterns=patterns)
    except Exception as cache_error:
        if _hub_offline():
            raise LookupError("not in the local Hugging Face cache and HF_HUB_OFFLINE=1") from cache_error
        try:
            folder = snapshot_download(repo_id, revision=revision, allow_patterns=patterns)
        except Exception as error:
            raise LookupError(f"not cached, and the hub could not serve it ({type(error).__name__})") from error
    path = Path(folder)
    return path, path.name if path.parent.name == "snapshots" else revision


def _package_version(package: str) -> str | None:
    for dist in importlib.metadata.packages_distributions().get(package, []):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def locate_packaged(packaged: Packaged) -> Path:
    """Folder of packaged weights (or the packaged file ``path`` names), found without importing the package."""
    spec = importlib.util.find_spec(packaged.package)
    if spec is None or not spec.submodule_search_locations:
        raise LookupError(f"package {packaged.package!r} is not installed")
    folder = Path(next(iter(spec.submodule_search_locations))) / packaged.path
    target = folder / packaged.gguf_file if packaged.gguf_file else folder
    if not target.exists():
        raise LookupError(f"{target} does not exist in the installed package")
    return folder


def _store_version(path: Path) -> str | None:
    """The model-store version a folder holds (its ``version.json``), e.g. for an override naming one."""
    import json

    from verticals.core.models.versions import VERSION_FILE

    try:
        meta = json.loads((path / VERSION_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(meta, dict) and meta.get("version") and meta.get("spec"):
        return f"{meta['spec']}@{meta['version']}"
    return None


def resolve(spec: ModelSpec, override: str | None = None, use_store: bool = True) -> ResolvedSource:
    """Find the weights of ``spec`` following the documented order."""
    attempts: list[tuple[str, str]] = []
    if override and override.startswith(f"{spec.name}@"):  # a model-store version: finance.sentiment@v1
        from verticals.core.models.versions import ModelStore, ModelStoreError

        try:
            chosen = ModelStore().get(spec.name, override.partition("@")[2])
        except ModelStoreError as error:
            raise ModelUnavailable(spec.name, [(f"override {override!r}", str(error))]) from None
        return ResolvedSource("override", chosen.path, override, chosen.version, spec.gguf_file, version=override)
    if override:
        path = Path(override).expanduser()
        if path.exists():
            return ResolvedSource("override", path.resolve(), str(path.resolve()), gguf_file=spec.gguf_file,
                                  version=_store_version(path.resolve()) if path.is_dir() else None)
        try:
            folder, commit = _from_hub(override, None, spec.gguf_file)
            return ResolvedSource("override", folder, override, commit, spec.gguf_file)
        except LookupError as error:
            attempts.append((f"override {override!r} (VERTICALS_MODELS)", f"no such folder, and as a hub id: {error}"))
            raise ModelUnavailable(spec.name, attempts) from None
    if use_store:
        from verticals.core.models.versions import ModelStore

        promoted = ModelStore().promoted(spec.name)
        if promoted is not None:
            return ResolvedSource("store", promoted.path, f"{spec.name}@{promoted.version}", promoted.version,
                                  spec.gguf_file, version=f"{spec.name}@{promoted.version}")
    if spec.local_path:
        path = Path(spec.local_path).expanduser()
        if path.exists():
            return ResolvedSource("local", path.resolve(), str(path.resolve()), gguf_file=spec.gguf_file)
        attempts.append((f"local path {spec.local_path}", "does not exist"))
    if spec.packaged:  # installed weights before the hub: the network never decides which model answers
        try:
            folder = locate_packaged(spec.packaged)
            version = _package_version(spec.packaged.package)
            reference = f"{spec.packaged.package}/{spec.packaged.path}".rstrip("/")
            return ResolvedSource("packaged", folder, reference, version, spec.packaged.gguf_file)
        except LookupError as error:
            attempts.append((f"packaged {spec.packaged.package}/{spec.packaged.path}", str(error)))
    if spec.hub_id:
        try:
            folder, commit = _from_hub(spec.hub_id, spec.revision, spec.gguf_file)
            return ResolvedSource("hub", folder, spec.hub_id, commit, spec.gguf_file)
        except LookupError as error:
            attempts.append((f"hub {spec.hub_id}" + (f"@{spec.revision}" if spec.revision else ""), str(error)))
    raise ModelUnavailable(spec.name, attempts)
