"""Registry credentials: our own 0600 file, and read-only Docker ``config.json`` ``auths``."""

from __future__ import annotations

import base64
import binascii
import json
import os
import tempfile
from dataclasses import dataclass
from typing import Any, Dict, Optional

from hpcbox_registry.errors import CredentialStoreError
from hpcbox_registry.reference import normalize_registry

_DEFAULT = object()


@dataclass(frozen=True)
class Credential:
    username: str
    password: str = ""

    def __repr__(self) -> str:  # never print a password
        return f"Credential(username={self.username!r}, password='***')"


def _default_docker_config() -> str:
    base = os.environ.get("DOCKER_CONFIG")
    if base:
        return os.path.join(base, "config.json")
    return "~/.docker/config.json"


class CredentialStore:
    """Credentials per registry.

    ``path`` is our own JSON file (``{"auths": {"registry": {"username", "password"}}}``), written
    atomically with mode 0600. ``docker_config`` is Docker's ``config.json``, only read: its
    ``auths`` entries (base64 ``auth`` or ``username``/``password``) are used when our file has
    none for a registry. The default honours ``$DOCKER_CONFIG``; pass None to ignore Docker's file.
    Credential helpers (``credsStore``/``credHelpers``) are not run.
    """

    def __init__(self, path: str = "~/.hpcbox/credentials.json", docker_config: Any = _DEFAULT) -> None:
        self.path = os.path.expanduser(str(path))
        if docker_config is _DEFAULT:
            docker_config = _default_docker_config()
        self.docker_config = os.path.expanduser(str(docker_config)) if docker_config else None

    # reading -------------------------------------------------------------------------------------
    def _load(self, path: str, what: str) -> Dict[str, Any]:
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise CredentialStoreError(
                f"cannot read the {what} {path} ({exc})", f"fix or remove {path}"
            ) from exc
        if not isinstance(data, dict):
            raise CredentialStoreError(f"the {what} {path} is not a JSON object", f"fix or remove {path}")
        return data

    @staticmethod
    def _find(auths: Any, registry: str) -> Optional[Dict[str, Any]]:
        if not isinstance(auths, dict):
            return None
        want = normalize_registry(registry)
        for key, value in auths.items():
            if isinstance(value, dict) and normalize_registry(str(key)) == want:
                return value
        return None

    @staticmethod
    def _decode(entry: Dict[str, Any], where: str) -> Optional[Credential]:
        if entry.get("auth"):
            try:
                text = base64.b64decode(entry["auth"], validate=False).decode("utf-8")
            except (binascii.Error, ValueError) as exc:
                raise CredentialStoreError(
                    f"the auth field for a registry in {where} is not base64 user:password",
                    f"fix {where} or log in again",
                ) from exc
            user, sep, password = text.partition(":")
            if not sep:
                raise CredentialStoreError(
                    f"the auth field for a registry in {where} lacks ':'", f"fix {where} or log in again"
                )
            return Credential(user, password)
        if entry.get("username"):
            return Credential(str(entry["username"]), str(entry.get("password") or ""))
        return None

    def get(self, registry: str) -> Optional[Credential]:
        """Credentials for ``registry``: our file first, then Docker's ``auths``; None if neither has any."""
        entry = self._find(self._load(self.path, "credentials file").get("auths"), registry)
        if entry:
            cred = self._decode(entry, self.path)
            if cred:
                return cred
        if self.docker_config:
            entry = self._find(self._load(self.docker_config, "Docker config").get("auths"), registry)
            if entry:
                return self._decode(entry, self.docker_config)
        return None

    # writing -------------------------------------------------------------------------------------
    def _write(self, data: Dict[str, Any]) -> None:
        directory = os.path.dirname(self.path) or "."
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".credentials.", suffix=".tmp", dir=directory)
        except OSError as exc:
            raise CredentialStoreError(
                f"cannot write the credentials file {self.path} ({exc})",
                f"check the permissions of {directory}",
            ) from exc
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, indent=2, sort_keys=True)
                f.write("\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise CredentialStoreError(
                f"cannot write the credentials file {self.path} ({exc})",
                f"check the permissions of {directory}",
            ) from exc

    def set(self, registry: str, username: str, password: str) -> None:
        """Store credentials for ``registry`` (atomic write, mode 0600)."""
        data = self._load(self.path, "credentials file")
        auths: Dict[str, Any] = data["auths"] if isinstance(data.get("auths"), dict) else {}
        key = normalize_registry(registry)
        auths = {k: v for k, v in auths.items() if normalize_registry(str(k)) != key}
        auths[key] = {"username": username, "password": password}
        data["auths"] = auths
        self._write(data)

    def remove(self, registry: str) -> bool:
        """Forget ``registry`` in our file; True if something was removed (Docker's file is never touched)."""
        data = self._load(self.path, "credentials file")
        auths: Dict[str, Any] = data["auths"] if isinstance(data.get("auths"), dict) else {}
        key = normalize_registry(registry)
        kept = {k: v for k, v in auths.items() if normalize_registry(str(k)) != key}
        if len(kept) == len(auths):
            return False
        data["auths"] = kept
        self._write(data)
        return True
