"""hpcbox inspect [--format TEMPLATE] IMAGE"""

from __future__ import annotations

import json
import re
import sys
from argparse import Namespace
from typing import Any, Dict

from hpcbox import output, settings
from hpcbox.errors import UsageError
from hpcbox.store import lookup as image_lookup

TYPE_CHECKING = False  # names for the type checker only
if TYPE_CHECKING:
    from hpcbox.containers import Container
    from hpcbox.store import Image, Store

_FIELD = re.compile(r"\{\{\s*((?:\.[A-Za-z0-9_]+)+|\.)\s*\}\}")


def describe(store: Store, image: Image) -> Dict[str, Any]:
    # a damaged blob is named with the pull that repairs it, and left there: inspect only reads
    manifest = store.read_json_blob(image.manifest_digest, "manifest", image, discard=False)
    config_digest = (manifest.get("config") or {}).get("digest")
    config = store.read_json_blob(config_digest, "config", image, discard=False) if config_digest else {}
    return {
        "Id": image.id,
        "RepoTags": image.tags,
        "RepoDigests": image.digests,
        "ManifestDigest": image.manifest_digest,
        "Platform": image.platform,
        "Size": image.size,
        "Created": image.created,
        "Annotations": image.annotations,
        "Manifest": manifest,
        "Config": config,
        "Store": str(image.source.home if image.source else store.home),
    }


def render(template: str, value: Any) -> str:
    """Replace each ``{{.A.B}}`` with that field (JSON for lists and objects)."""

    def lookup(match: re.Match[str]) -> str:
        current = value
        path = match.group(1)
        for key in filter(None, path.split(".")):
            if isinstance(current, dict) and key in current:
                current = current[key]
            elif isinstance(current, dict):
                lowered = {k.lower(): k for k in current}
                if key.lower() not in lowered:
                    raise UsageError(f"no field {key!r} in {path!r}",
                                     "run 'hpcbox inspect IMAGE' to see the fields")
                current = current[lowered[key.lower()]]
            else:
                raise UsageError(f"{path!r} goes into a value that has no fields",
                                 "run 'hpcbox inspect IMAGE' to see the fields")
        return current if isinstance(current, str) else json.dumps(current)

    rest = _FIELD.sub("", template)
    if "{{" in rest or "}}" in rest:
        raise UsageError(f"cannot read the template {template!r}: '{{{{' and '}}}}' must enclose a field "
                         "such as .Config.config.Env", "write fields as {{.Field.Subfield}}")
    return _FIELD.sub(lookup, template)


def describe_container(c: Container) -> Dict[str, Any]:
    return {"Id": c.id, "Names": c.names, "Created": c.created, "Image": c.image, "Protected": c.protected,
            "ExecMode": c.execmode, "Settings": c.settings, "Rootfs": str(c.rootfs), "Dir": str(c.dir),
            "Config": c.image_config}


def _find(store: Store, args: Namespace) -> Dict[str, Any]:
    """The image named *args.image*; else (or with ``--type container``) the container of that name/id."""
    kind = getattr(args, "type", None)
    image_error = None
    if kind != "container":
        try:
            return describe(store, image_lookup.find(store, args.image))
        except Exception as exc:  # unknown image, or a container name that is no image reference
            if kind == "image":
                raise
            image_error = exc
    from hpcbox.containers import ContainerStore, UnknownContainerError

    try:
        return describe_container(ContainerStore(store).get(args.image))
    except UnknownContainerError:
        if image_error is None:
            raise
    raise image_error


def _root_path(store: Store, args: Namespace) -> int:
    """udocker's ``inspect -p``: the container's root directory on the host."""
    from hpcbox.containers import ContainerStore

    c = ContainerStore(store).get(args.image)
    if c.storage == "overlay":
        raise UsageError(f"container {args.image} is an overlay container: its files are in {c.upper} "
                         f"over {c.lower}, mounted only while it runs",
                         "make a copy with 'hpcbox clone' to get one root directory")
    sys.stdout.write(f"{c.rootfs}\n")
    return 0


def run(args: Namespace) -> int:
    store = settings.store(args)
    if getattr(args, "path", False):
        return _root_path(store, args)
    info = _find(store, args)
    if args.format:
        sys.stdout.write(render(args.format, info) + "\n")
    else:
        output.print_json(info)
    return 0
