"""Platforms (os/architecture/variant) and the choice of a manifest from an index."""

from __future__ import annotations

import platform as _pyplatform
import re
import sys
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

_PART_RE = re.compile(r"[A-Za-z0-9_.+-]{1,64}")

# Python's / uname's machine names and Debian's names -> (GOARCH, variant)
_ARCH_ALIASES: Dict[str, Tuple[str, Optional[str]]] = {
    "x86_64": ("amd64", None),
    "x86-64": ("amd64", None),
    "amd64": ("amd64", None),
    "x64": ("amd64", None),
    "aarch64": ("arm64", "v8"),
    "arm64": ("arm64", None),
    "armv8l": ("arm", "v8"),
    "armv8": ("arm64", "v8"),
    "armv7l": ("arm", "v7"),
    "armv7": ("arm", "v7"),
    "armhf": ("arm", "v7"),
    "armv6l": ("arm", "v6"),
    "armel": ("arm", "v6"),
    "armv5tel": ("arm", "v5"),
    "arm": ("arm", None),
    "i386": ("386", None),
    "i486": ("386", None),
    "i586": ("386", None),
    "i686": ("386", None),
    "x86": ("386", None),
    "386": ("386", None),
    "ppc64le": ("ppc64le", None),
    "ppc64el": ("ppc64le", None),
    "ppc64": ("ppc64", None),
    "s390x": ("s390x", None),
    "riscv64": ("riscv64", None),
    "mips64": ("mips64", None),
    "mips64el": ("mips64le", None),
    "mips64le": ("mips64le", None),
    "loongarch64": ("loong64", None),
    "loong64": ("loong64", None),
}

# For arm, a CPU of one variant runs the older ones too (best first).
_ARM_COMPATIBLE = {
    "v8": ("v8", "v7", "v6", "v5"),
    "v7": ("v7", "v6", "v5"),
    "v6": ("v6", "v5"),
    "v5": ("v5",),
}


def _normalize(os_name: str, arch: str, variant: Optional[str]) -> Tuple[str, str, Optional[str]]:
    os_name = os_name.strip().lower()
    arch_key = arch.strip().lower()
    norm_arch, alias_variant = _ARCH_ALIASES.get(arch_key, (arch_key, None))
    variant = (variant or "").strip().lower() or alias_variant
    if variant and variant.isdigit():
        variant = f"v{variant}"
    return os_name, norm_arch, variant


@dataclass(frozen=True)
class Platform:
    """An OCI platform. For matching, ``arm64`` without a variant is the same as ``arm64/v8``."""

    os: str
    architecture: str
    variant: Optional[str] = None
    os_version: Optional[str] = None
    os_features: Tuple[str, ...] = ()

    def __post_init__(self) -> None:
        os_name, arch, variant = _normalize(self.os, self.architecture, self.variant)
        object.__setattr__(self, "os", os_name)
        object.__setattr__(self, "architecture", arch)
        object.__setattr__(self, "variant", variant)
        object.__setattr__(self, "os_features", tuple(self.os_features or ()))

    @classmethod
    def parse(cls, text: str) -> Platform:
        """Parse ``os/arch[/variant]`` (e.g. ``linux/arm64/v8``); a bare ``arch`` means linux/arch."""
        parts = [p.strip() for p in str(text).strip().split("/")]
        if len(parts) == 1 and parts[0].lower() in _ARCH_ALIASES:
            parts = ["linux", parts[0]]
        if len(parts) not in (2, 3) or not all(_PART_RE.fullmatch(p) and p.strip(".") for p in parts):
            from hpcbox_registry.errors import InvalidPlatformError

            raise InvalidPlatformError(
                f"invalid platform {text!r}",
                "write it as os/architecture[/variant], e.g. linux/amd64 or linux/arm/v7",
            )
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else None)

    @classmethod
    def host(cls) -> Platform:
        """The platform of this machine (Python's machine name mapped to OCI's: x86_64 -> amd64 ...)."""
        os_name = "linux" if sys.platform.startswith("linux") else _pyplatform.system().lower() or "linux"
        return cls(os_name, _pyplatform.machine() or "amd64")

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> Platform:
        return cls(
            str(data.get("os", "")),
            str(data.get("architecture", "")),
            data.get("variant") or None,
            data.get("os.version") or None,
            tuple(data.get("os.features") or ()),
        )

    def to_dict(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            out["variant"] = self.variant
        if self.os_version:
            out["os.version"] = self.os_version
        if self.os_features:
            out["os.features"] = list(self.os_features)
        return out

    def _variant_rank(self, candidate: Platform) -> Optional[int]:
        """How well ``candidate`` runs here: 0 is exact; None means it does not run here."""
        if candidate.os != self.os or candidate.architecture != self.architecture:
            return None
        mine, theirs = self._effective_variant(), candidate._effective_variant()
        if mine == theirs:
            return 0
        if self.architecture == "arm":
            wanted = mine or "v7"
            order = _ARM_COMPATIBLE.get(wanted, (wanted,))
            if theirs is None:
                return len(order)  # an arm image that does not say which variant: last resort
            if theirs in order:
                return order.index(theirs)
            return None
        if mine is None:
            return 1  # any variant (e.g. amd64/v2) when none was asked for, after the plain one
        return None

    def _effective_variant(self) -> Optional[str]:
        if self.architecture == "arm64" and self.variant is None:
            return "v8"
        return self.variant

    def matches(self, candidate: Platform) -> bool:
        """True if an image for ``candidate`` runs on this platform."""
        return self._variant_rank(candidate) is not None

    def __str__(self) -> str:
        text = f"{self.os}/{self.architecture}"
        if self.variant:
            text += f"/{self.variant}"
        return text


def select_platform(wanted: Platform, candidates: Sequence[Optional[Platform]]) -> Optional[int]:
    """Index of the best candidate for ``wanted`` (exact first, then compatible arm variants), or None."""
    ranked: List[Tuple[int, int]] = []
    for i, cand in enumerate(candidates):
        if cand is None:
            continue
        rank = wanted._variant_rank(cand)
        if rank is not None:
            ranked.append((rank, i))
    if not ranked:
        return None
    return min(ranked)[1]
