"""hpcbox images [--json] [-q] [-l]"""

from __future__ import annotations

import sys
from argparse import Namespace
from typing import Iterable, Tuple

from hpcbox import output, settings

TYPE_CHECKING = False  # names for the type checker only
if TYPE_CHECKING:
    from hpcbox.store import Image, Store


def _split(name: str) -> Tuple[str, str, str]:
    if "@" in name:
        repo, digest = name.split("@", 1)
        return repo, "<none>", digest
    repo, _, tag = name.rpartition(":")
    return repo, tag, ""


def run(args: Namespace) -> int:
    store = settings.store(args)
    images = store.all_images()
    if args.quiet:
        for image in images:
            sys.stdout.write(image.id.split(":", 1)[1][:12] + "\n")
        return 0
    if args.json:
        output.print_json([{
            "id": image.id,
            "manifest": image.manifest_digest,
            "tags": image.tags,
            "digests": image.digests,
            "size": image.size,
            "created": image.created,
            "platform": image.platform,
            **({"store": str(image.source.home), "readonly": True} if image.source else {}),
        } for image in images])
        return 0
    rows = []
    shared = any(image.source for image in images)
    for image in images:
        digest = next((d.split("@", 1)[1] for d in image.digests), "")
        for name in image.tags or image.digests[:1] or ["<none>@"]:
            repo, tag, _ = _split(name)
            row = [repo, tag, digest[:19] if digest else "<none>", image.id.split(":", 1)[1][:12],
                   image.created[:19].replace("T", " ") or "-", output.human_size(image.size)]
            if shared:
                row.append(f"{image.source.home} (read-only)" if image.source else "home")
            rows.append(row)
    header = ["REPOSITORY", "TAG", "DIGEST", "IMAGE ID", "CREATED", "SIZE"]
    output.table([*header, "STORE"] if shared else header, rows)
    if getattr(args, "long", False):
        _layers(store, images)
    return 0


def _layers(store: Store, images: Iterable[Image]) -> None:
    """udocker's ``images -l``: each image's layers, as blob paths with their sizes."""
    for image in images:
        owner = image.source or store
        sys.stdout.write(f"{(image.tags or image.digests or [image.id])[0]}\n")
        manifest = owner.read_json_blob(image.manifest_digest, "manifest", image, discard=False)
        for layer in manifest.get("layers") or []:
            algo, _, hexpart = str(layer.get("digest", "")).partition(":")
            path = owner.images_dir / "blobs" / algo / hexpart
            sys.stdout.write(f"  {path} ({output.human_size(int(layer.get('size') or 0))})\n")
