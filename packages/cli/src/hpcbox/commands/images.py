"""hpcbox images [--json] [-q]"""

from __future__ import annotations

import sys

from hpcbox import output, settings


def _split(name: str):
    if "@" in name:
        repo, digest = name.split("@", 1)
        return repo, "<none>", digest
    repo, _, tag = name.rpartition(":")
    return repo, tag, ""


def run(args) -> int:
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
    return 0
