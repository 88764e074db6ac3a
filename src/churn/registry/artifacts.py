"""Model artifact files: written atomically, hashed, and verified before anything is unpickled."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
from pathlib import Path

import joblib

from churn.registry.records import ArtifactIntegrityError, RegistryError

_CHUNK = 1 << 20


def artifact_relpath(model_name: str, version: int, suffix: str = ".joblib") -> str:
    """Where version ``version`` of ``model_name`` lives, relative to ``models_dir``."""
    return f"{model_name}/v{version}{suffix or '.joblib'}"


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def stage_artifact(target: Path, model: object | None = None, source: Path | None = None) -> tuple[Path, str]:
    """Write ``model`` (joblib) or a copy of ``source`` to a temp file next to ``target``.

    The caller moves the temp file onto ``target`` with ``os.replace`` once the registry rows are
    in, so a reader never sees a half-written artifact. Returns the temp path and its sha256.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        if source is not None:
            shutil.copyfile(source, tmp)
        else:
            joblib.dump(model, tmp)
        return tmp, file_sha256(tmp)
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        what = f"copy {source}" if source is not None else f"pickle {type(model).__name__}"
        raise RegistryError(f"cannot {what} into {target}: {exc}") from exc


def read_verified(path: Path, expected_sha256: str) -> bytes:
    """The artifact's bytes, only if they hash to ``expected_sha256``."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ArtifactIntegrityError(
            f"model artifact {path} is missing (expected sha256 {expected_sha256}); "
            "restore it or register the model again"
        ) from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected_sha256:
        raise ArtifactIntegrityError(
            f"model artifact {path} does not match the registry: expected sha256 "
            f"{expected_sha256}, actual {actual}; refusing to load it"
        )
    return data


def load_verified(path: Path, expected_sha256: str) -> object:
    """Unpickle the artifact from the very bytes that were verified (no re-read, no race)."""
    data = read_verified(path, expected_sha256)
    try:
        return joblib.load(io.BytesIO(data))
    except Exception as exc:
        raise RegistryError(f"model artifact {path} passed its hash check but cannot be loaded: {exc}") from exc
