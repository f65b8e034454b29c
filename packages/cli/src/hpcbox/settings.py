"""Where the store is and how to reach registries: options, then environment, then <home>/config.json.

``<home>/config.json`` (all keys optional)::

    {"insecure_registries": ["registry.lan:5000"],
     "ca_bundle": "/etc/site/ca.pem",
     "mirrors": {"docker.io": ["https://mirror.site.org"]}}

Environment: ``HPCBOX_HOME`` (else udocker's ``UDOCKER_DIR``),
``HPCBOX_INSECURE_REGISTRIES`` (comma or space separated),
``HPCBOX_CA_BUNDLE``, ``HPCBOX_REGISTRY_MIRRORS`` (``docker.io=https://m1,https://m2;quay.io=https://m3``).

Who runs containers by default (``hpcbox run --as-me``/``--as-root`` override it): ``HPCBOX_RUN_AS``
(``root`` or ``me``), else ``"run_as"`` in ``<home>/config.json``, else in the site's config file, else
``root``.

Read-only image stores (a site-wide store that many users read): ``HPCBOX_IMAGES`` (colon-separated
store directories or OCI image layouts; set but empty: none), else ``"image_stores": [...]`` in
``<home>/config.json``, else in the site's config file ``/etc/hpcbox/config.json`` (another path with
``HPCBOX_SITE_CONFIG``), which holds the same keys as the user's and is read only for this one.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Dict, List, Tuple

from hpcbox.errors import UsageError

TYPE_CHECKING = False  # names for the type checker only
if TYPE_CHECKING:
    from hpcbox.store import Store
    from hpcbox_registry import CredentialStore, ImageReference, RegistryClient


def home(args: Any) -> Path:
    given = getattr(args, "home", None)
    if given:
        return Path(given).expanduser().absolute()
    env = os.environ.get("HPCBOX_HOME") or os.environ.get("UDOCKER_DIR")  # udocker's name for the store
    return Path(env).expanduser().absolute() if env else Path.home() / ".hpcbox"


SITE_CONFIG = "/etc/hpcbox/config.json"


def store(args: Any) -> Store:
    from hpcbox.store import Store

    found = Store(home(args), image_stores=lambda: image_stores(args))
    if os.path.exists(found.home) and not os.path.isdir(found.home):  # said once, before any command
        raise found.not_a_directory()                                   # tries to write in it
    return found


def directory_home(args: Any) -> Path:
    """The store's home for commands that keep only a file there (login, logout): named as
    ``store()`` names it when it is a file."""
    found = home(args)
    if os.path.exists(found) and not os.path.isdir(found):
        from hpcbox.store import Store

        raise Store(found).not_a_directory()
    return found


def image_stores(args: Any) -> List[str]:
    """The read-only image stores, in search order (see the module doc)."""
    given = os.environ.get("HPCBOX_IMAGES")
    if given is not None:
        return [p for p in given.split(":") if p]
    site = Path(os.environ.get("HPCBOX_SITE_CONFIG") or SITE_CONFIG)
    for path, config in ((home(args) / "config.json", _file_config(home(args))),
                         (site, _read_config(site))):
        value = config.get("image_stores")
        if value is None:
            continue
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise UsageError(f"image_stores in {path} must be a list of directory names", "fix that file")
        return [str(Path(v).expanduser()) for v in value]
    return []


RUN_AS = ("root", "me")


def run_as(args: Any) -> Tuple[str, str]:
    """The default of ``run --as-me``/``--as-root``: (``root`` or ``me``, where it was set)."""
    given = os.environ.get("HPCBOX_RUN_AS")
    if given:
        where = "HPCBOX_RUN_AS"
    else:
        site = Path(os.environ.get("HPCBOX_SITE_CONFIG") or SITE_CONFIG)
        where, given = "built-in default", "root"
        for path in (home(args) / "config.json", site):
            value = _read_config(path).get("run_as")
            if value is not None:
                where, given = str(path), value
                break
    if given not in RUN_AS:
        raise UsageError(f"run_as in {where} is {given!r}, which is neither 'root' nor 'me'",
                         "set it to \"root\" or \"me\"")
    return given, where


def _file_config(root: Path) -> Dict[str, Any]:
    return _read_config(root / "config.json")


def _read_config(path: Path) -> Dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, NotADirectoryError):  # (a store that is a file: its commands say so)
        return {}
    except OSError as exc:
        raise UsageError(f"cannot read {path} ({exc.strerror})", "fix or remove that file") from None
    except ValueError as exc:
        raise UsageError(f"cannot read {path} ({exc})", "fix or remove that file") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path} must hold a JSON object", "fix or remove that file")
    return data


def parse_mirrors(text: str) -> Dict[str, Tuple[str, ...]]:
    mirrors: Dict[str, Tuple[str, ...]] = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        registry, sep, urls = part.partition("=")
        if not sep or not registry.strip() or not urls.strip():
            raise UsageError(f"bad mirror setting {part!r}",
                             "write HPCBOX_REGISTRY_MIRRORS as REGISTRY=URL[,URL][;REGISTRY=URL]")
        mirrors[registry.strip()] = tuple(u.strip() for u in urls.split(",") if u.strip())
    return mirrors


def registry_options(args: Any) -> Dict[str, Any]:
    """Keyword arguments for ``hpcbox_registry.RegistryConfig``."""
    file_config = _file_config(home(args))
    insecure: List[str] = list(getattr(args, "insecure_registry", None) or [])
    insecure += [h for h in re.split(r"[,\s]+", os.environ.get("HPCBOX_INSECURE_REGISTRIES", "")) if h]
    insecure += list(file_config.get("insecure_registries") or [])
    ca_bundle = (getattr(args, "ca_bundle", None) or os.environ.get("HPCBOX_CA_BUNDLE")
                 or file_config.get("ca_bundle"))
    if ca_bundle:
        ca_bundle = str(Path(ca_bundle).expanduser())
        if not os.path.isfile(ca_bundle):
            raise UsageError(f"CA bundle {ca_bundle} does not exist",
                             "give an existing PEM file to --ca-bundle or HPCBOX_CA_BUNDLE")
    mirrors = {k: tuple(v) if isinstance(v, (list, tuple)) else (v,)
               for k, v in (file_config.get("mirrors") or {}).items()}
    if os.environ.get("HPCBOX_REGISTRY_MIRRORS"):
        mirrors.update(parse_mirrors(os.environ["HPCBOX_REGISTRY_MIRRORS"]))
    from hpcbox.__about__ import __version__

    options: Dict[str, Any] = {"insecure_registries": tuple(dict.fromkeys(insecure)), "ca_bundle": ca_bundle,
               "mirrors": mirrors, "user_agent": f"hpcbox/{__version__}"}
    timeout = os.environ.get("HPCBOX_REGISTRY_TIMEOUT") or file_config.get("timeout")
    if timeout is not None:
        try:
            options["timeout"] = float(timeout)
        except (TypeError, ValueError):
            options["timeout"] = -1.0
        if not options["timeout"] > 0:
            raise UsageError(f"registry timeout {timeout!r} is not a positive number of seconds",
                             "set HPCBOX_REGISTRY_TIMEOUT (or \"timeout\" in config.json) to e.g. 30")
    retries = os.environ.get("HPCBOX_REGISTRY_RETRIES") or file_config.get("retries")
    if retries is not None:
        if not str(retries).isdigit():
            raise UsageError(f"registry retries {retries!r} is not a whole number",
                             "set HPCBOX_REGISTRY_RETRIES (or \"retries\" in config.json) to e.g. 5")
        options["max_retries"] = int(retries)
    return options


def docker_config_path() -> str:
    base = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    return os.path.join(base, "config.json")


def credentials(args: Any) -> CredentialStore:
    from hpcbox_registry import CredentialStore

    path = directory_home(args) / "credentials.json"
    return CredentialStore(path=str(path), docker_config=docker_config_path())


def client(args: Any) -> RegistryClient:
    """A ``RegistryClient`` configured from options, environment and config file."""
    from hpcbox_registry import RegistryClient, RegistryConfig

    return RegistryClient(RegistryConfig(**registry_options(args)), credentials=credentials(args))


def parse_reference(text: str) -> ImageReference:
    from hpcbox_registry import ImageReference

    return ImageReference.parse(text)
