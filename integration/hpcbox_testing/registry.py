"""Debian's ``docker-registry`` (distribution 2.8) started on 127.0.0.1, and pushes to it with skopeo.

Three configurations (see :func:`start_registry`):

- ``"http"``:  anonymous, plain HTTP;
- ``"tls-basic"``: HTTPS with a certificate from a CA made here (``ca_bundle``) and htpasswd (bcrypt) Basic
  auth for one user;
- ``"token"``: plain HTTP with Bearer token auth against a :class:`~.tokenserver.TokenServer`, as on
  Docker Hub.

Storage is the filesystem driver under ``storage`` with deletes enabled; the registry's output goes to
``log_path``. Stop with :meth:`Registry.stop` (or use it as a context manager).
"""

from __future__ import annotations

import json
import secrets
import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

from .ports import LOOPBACK, free_port, wait_for_http
from .tls import issue_server_cert, make_ca, make_token_signer
from .tokenserver import TokenServer

REGISTRY_BINARY = "/usr/bin/docker-registry"
RUNNING: List[Registry] = []  # started and not yet stopped, for logs in failure reports


@dataclass(frozen=True)
class PushedImage:
    ref: str  # "127.0.0.1:PORT/repo:tag"
    digest: str  # digest of the top-level manifest (or index) as served
    media_type: str


def _require(binary: str, package: str) -> str:
    path = shutil.which(binary)
    if path is None:
        raise RuntimeError(
            f"'{binary}' not found: install the Debian package {package} (apt-get install {package})"
        )
    return path


class Registry:
    """A running registry. Public attributes: ``host``, ``url``, ``storage``, ``ca_bundle``, ``username``,
    ``password``, ``log_path``, ``kind`` and, for ``"token"``, ``token_server``."""

    def __init__(self, kind: str, workdir: Path, images=None):
        self.kind = kind
        self.workdir = workdir
        self.images = images  # an images.TestImages, needed by push()
        self.storage = workdir / "storage"
        self.log_path = workdir / "registry.log"
        self.ca_bundle: Optional[Path] = None
        self.username: Optional[str] = None
        self.password: Optional[str] = None
        self.token_server: Optional[TokenServer] = None
        self._push_creds: Optional[str] = None  # "user:password" skopeo pushes with
        self._process: Optional[subprocess.Popen] = None
        self._port = 0

    @property
    def host(self) -> str:
        return f"{LOOPBACK}:{self._port}"

    @property
    def url(self) -> str:
        scheme = "https" if self.kind == "tls-basic" else "http"
        return f"{scheme}://{self.host}"

    def blob_path(self, digest: str) -> Path:
        """The data file of a blob in the registry's filesystem storage (shared by every repository)."""
        algorithm, _, hexdigest = digest.partition(":")
        return self.storage / "docker/registry/v2/blobs" / algorithm / hexdigest[:2] / hexdigest / "data"

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no registry log)"

    def ssl_context(self) -> Optional[ssl.SSLContext]:
        if self.ca_bundle is None:
            return None
        return ssl.create_default_context(cafile=str(self.ca_bundle))

    # -- configuration -------------------------------------------------------------------------
    def _config(self) -> dict:
        config: dict = {
            "version": 0.1,
            "log": {"level": "info", "formatter": "text", "accesslog": {"disabled": False}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.storage)},
                "delete": {"enabled": True},
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            "http": {"addr": self.host, "secret": secrets.token_hex(16), "headers": {}},
            "health": {"storagedriver": {"enabled": False}},
        }
        if self.kind == "tls-basic":
            ca = make_ca(self.workdir / "tls")
            server = issue_server_cert(ca, self.workdir / "tls")
            # alone in its directory: skopeo's --cert-dir takes every *.key there for a client key
            self.ca_bundle = self.workdir / "ca" / "ca.crt"
            self.ca_bundle.parent.mkdir()
            shutil.copyfile(ca.cert_path, self.ca_bundle)
            config["http"]["tls"] = {"certificate": str(server.cert_path), "key": str(server.key_path)}
            self.username, self.password = "hpcbox", secrets.token_urlsafe(12)
            htpasswd = _require("htpasswd", "apache2-utils")
            line = subprocess.run(
                [htpasswd, "-Bbn", self.username, self.password], check=True, capture_output=True, text=True
            ).stdout.strip()
            (self.workdir / "htpasswd").write_text(line + "\n")
            config["auth"] = {"htpasswd": {"realm": "hpcbox-test", "path": str(self.workdir / "htpasswd")}}
            self._push_creds = f"{self.username}:{self.password}"
        elif self.kind == "token":
            signer = make_token_signer(self.workdir / "token")
            self.token_server = TokenServer(signer).start()
            self.username, self.password = "hpcbox", secrets.token_urlsafe(12)
            pusher_password = secrets.token_urlsafe(12)
            self.token_server.add_user(self.username, self.password)
            self.token_server.add_user("pusher", pusher_password)
            self.token_server.grant("pusher", "*", ["*"])
            self.token_server.never_stale.add("pusher")
            for glob in ("hpcbox/*", "library/*"):
                self.token_server.grant(self.username, glob, ["pull", "push"])
            self.token_server.grant(None, "public/*", ["pull"])
            self._push_creds = f"pusher:{pusher_password}"
            config["auth"] = {
                "token": {
                    "realm": self.token_server.url,
                    "service": self.token_server.service,
                    "issuer": self.token_server.issuer,
                    "rootcertbundle": str(signer.cert_path),
                }
            }
        elif self.kind != "http":
            raise ValueError(f"unknown registry kind {self.kind!r}: use 'http', 'tls-basic' or 'token'")
        return config

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self, attempts: int = 3) -> Registry:
        binary = _require(Path(REGISTRY_BINARY).name, "docker-registry")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.storage.mkdir(exist_ok=True)
        config = None
        for _attempt in range(attempts):  # a free port may be taken between free_port() and bind
            self._port = free_port()
            config = self._config() if config is None else config
            config["http"]["addr"] = self.host
            config_path = self.workdir / "config.yml"
            config_path.write_text(json.dumps(config, indent=2))  # YAML is a superset of JSON
            with open(self.log_path, "ab") as log:
                self._process = subprocess.Popen(
                    [binary, "serve", str(config_path)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            try:
                wait_for_http(
                    f"{self.url}/v2/",
                    ssl_context=self.ssl_context(),
                    alive=lambda: self._process.poll() is None,
                )
                if self._process.poll() is not None:  # what answered was another server on that port
                    raise RuntimeError(f"it exited with status {self._process.returncode}")
            except RuntimeError as error:
                self._kill()
                if "address already in use" in self.log_tail(5):
                    continue
                self._stop_token_server()
                raise RuntimeError(
                    f"docker-registry ({self.kind}) did not start: {error}\n{self.log_tail()}"
                ) from None
            RUNNING.append(self)
            return self
        self._stop_token_server()
        raise RuntimeError(
            f"docker-registry ({self.kind}) found no free port in {attempts} tries\n{self.log_tail()}"
        )

    def _kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def _stop_token_server(self) -> None:
        if self.token_server is not None:
            self.token_server.stop()

    def stop(self) -> None:
        self._kill()
        self._stop_token_server()
        if self in RUNNING:
            RUNNING.remove(self)

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- pushing test images -------------------------------------------------------------------
    def skopeo_dest_args(self) -> List[str]:
        """skopeo options to write to this registry (TLS, CA directory, credentials)."""
        args = [f"--dest-tls-verify={'true' if self.kind == 'tls-basic' else 'false'}"]
        if self.ca_bundle is not None:
            args.append(f"--dest-cert-dir={self.ca_bundle.parent}")  # holds only ca.crt
        if self._push_creds:
            args.append(f"--dest-creds={self._push_creds}")
        return args

    def push(self, image_name: str, repo: str, tag: str = "latest") -> PushedImage:
        """Push the built test image ``image_name`` (see images.IMAGE_NAMES) as ``repo:tag``."""
        if self.images is None:
            raise RuntimeError("this Registry was made without test images; pass images= to push")
        source, options, media_type = self.images.push_source(image_name)
        ref = f"{self.host}/{repo}:{tag}"
        digest_file = self.workdir / "push.digest"
        skopeo = _require("skopeo", "skopeo")
        command = [
            skopeo,
            "copy",
            "--quiet",
            "--retry-times=2",
            *options,
            *self.skopeo_dest_args(),
            f"--digestfile={digest_file}",
            source,
            f"docker://{ref}",
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            detail = f"{result.stderr.strip()}\n{self.log_tail(20)}"
            raise RuntimeError(f"skopeo copy to {ref} failed ({result.returncode}): {detail}")
        return PushedImage(ref=ref, digest=digest_file.read_text().strip(), media_type=media_type)


def start_registry(kind: str, workdir: Path, images=None) -> Registry:
    """Start a registry of ``kind`` ("http", "tls-basic" or "token") with its files under ``workdir``."""
    return Registry(kind, Path(workdir), images).start()
