"""Find the site's apptainer/singularity, read its version and the exec options it offers."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import FrozenSet, List, Mapping, Optional, Tuple

from hpcbox_engine_singularity.errors import UnavailableError

ENV_OVERRIDE = "HPCBOX_SINGULARITY"
CANDIDATES = ("apptainer", "singularity")
# exec options the engine cannot work without, and those it uses when the binary has them.
REQUIRED = ("bind", "cleanenv", "pwd")
OPTIONAL = ("writable", "userns", "fakeroot", "nv", "rocm", "no-home", "home", "containall",
            "no-mount", "hostname", "uts", "scratch", "workdir", "net", "network")
# Apptainer 1.4 lists `--cwd` ("synonym for --pwd") and hides `--pwd` from `help exec`.
ALIASES = {"pwd": ("cwd",)}
# Oldest versions we accept per flavor: Singularity 2.x has another CLI and no fakeroot at all.
MINIMUM = {"apptainer": (1, 0, 0), "singularity-ce": (3, 0, 0), "singularity": (3, 0, 0)}
INSTALL_HINT = (
    "run `module load apptainer` (or `module load singularity`) if your site provides it, ask the "
    f"administrators to install Apptainer, or set {ENV_OVERRIDE} to the binary's path"
)
PROBE_TIMEOUT = 30.0

_VERSION_RE = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")
_OPTION_RE = re.compile(r"^\s*(?:-[A-Za-z0-9](?:,\s*|/))?--([a-z0-9][a-z0-9-]*)")


@dataclass(frozen=True)
class Installation:
    """One apptainer/singularity binary as probed: how to call it and what it can do."""

    path: str
    flavor: str  # "apptainer", "singularity-ce" or "singularity"
    version: Tuple[int, int, int]
    version_text: str
    features: FrozenSet[str]

    @property
    def command_name(self) -> str:
        return "apptainer" if self.flavor == "apptainer" else "singularity"

    @property
    def env_prefix(self) -> str:
        """How this binary spells variables for the container's environment."""
        return "APPTAINERENV_" if self.flavor == "apptainer" else "SINGULARITYENV_"

    @property
    def version_string(self) -> str:
        return ".".join(str(n) for n in self.version)

    def has(self, option: str) -> bool:
        name = option.lstrip("-")
        return name in self.features or any(alias in self.features for alias in ALIASES.get(name, ()))

    def spelling(self, option: str) -> str:
        """The flag to pass for `option`: its own name if listed, else a listed synonym."""
        name = option.lstrip("-")
        if name not in self.features:
            for alias in ALIASES.get(name, ()):
                if alias in self.features:
                    return f"--{alias}"
        return f"--{name}"

    def too_old(self) -> bool:
        return self.version < MINIMUM.get(self.flavor, (3, 0, 0))


def parse_version(text: str) -> Tuple[str, Tuple[int, int, int]]:
    """(flavor, (major, minor, patch)) from `--version` output.

    Known forms: "apptainer version 1.2.5", "singularity-ce version 3.11.4",
    "singularity version 3.8.7", and Singularity 2's bare "2.6.1-dist".
    """
    line = text.strip().splitlines()[0].strip() if text.strip() else ""
    match = _VERSION_RE.search(line)
    if not match:
        raise ValueError(f"no version number in {line!r}")
    version = (int(match.group(1)), int(match.group(2)), int(match.group(3) or 0))
    head = line[: match.start()].lower()
    if "apptainer" in head:
        flavor = "apptainer"
    elif "singularity-ce" in head or "singularityce" in head:
        flavor = "singularity-ce"
    else:
        flavor = "singularity"  # "singularity version 3.8.7" and the bare 2.x form
    return flavor, version


def parse_features(help_text: str) -> FrozenSet[str]:
    """Long option names defined in `help exec` output (cobra's and Singularity 2's layouts)."""
    features = set()
    for line in help_text.splitlines():
        match = _OPTION_RE.match(line)
        if match:
            features.add(match.group(1))
    return frozenset(features)


def _run(argv: List[str]) -> Tuple[int, str]:
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=PROBE_TIMEOUT, check=False)
    except (OSError, subprocess.SubprocessError) as error:
        return -1, str(error)
    return done.returncode, done.stdout.decode("utf-8", "replace")


def find_binary(environ: Optional[Mapping[str, str]] = None) -> str:
    """The binary to use: $HPCBOX_SINGULARITY, else apptainer, else singularity on PATH."""
    environ = os.environ if environ is None else environ
    override = environ.get(ENV_OVERRIDE, "").strip()
    search_path = environ.get("PATH", os.defpath)
    if override:
        found = shutil.which(override, path=search_path) if "/" not in override else override
        if not found or not os.path.isfile(found) or not os.access(found, os.X_OK):
            raise UnavailableError(
                f"{ENV_OVERRIDE}={override} is not an executable file: point it at the apptainer or "
                f"singularity binary, or unset it to search PATH"
            )
        return os.path.abspath(found)
    for name in CANDIDATES:
        found = shutil.which(name, path=search_path)
        if found:
            return os.path.abspath(found)
    raise UnavailableError(f"neither apptainer nor singularity is on PATH: {INSTALL_HINT}")


def probe(path: str) -> Installation:
    """Ask the binary for its version and the options of `exec`; UnavailableError if it will not say."""
    code, out = _run([path, "--version"])
    if code != 0:
        code, out = _run([path, "version"])
    try:
        if code != 0:
            raise ValueError(out.strip().splitlines()[-1] if out.strip() else f"exit status {code}")
        flavor, version = parse_version(out)
    except ValueError as error:
        raise UnavailableError(
            f"{path} --version did not give a version ({error}): check that it is a working apptainer or "
            f"singularity, or set {ENV_OVERRIDE} to one"
        ) from None
    code, help_text = _run([path, "help", "exec"])
    features = parse_features(help_text) if code == 0 else frozenset()
    if not features:
        code, help_text = _run([path, "exec", "--help"])
        features = parse_features(help_text) if code == 0 else frozenset()
    text = out.strip().splitlines()[0].strip()
    return Installation(path, flavor, version, text, features)


def check(installation: Installation) -> Tuple[bool, str]:
    """(usable, explanation) for a probed installation."""
    name = f"{installation.path} ({installation.version_text})"
    if installation.too_old():
        least = ".".join(str(n) for n in MINIMUM.get(installation.flavor, (3, 0, 0)))
        return False, (
            f"{name} is too old: hpcbox needs {installation.flavor} {least} or newer (or Apptainer 1.0+); "
            f"{INSTALL_HINT}"
        )
    missing = [f"--{o}" for o in REQUIRED if not installation.has(o)]
    if missing:
        return False, (
            f"{name} lacks the exec option(s) {', '.join(missing)} (read from `help exec`): "
            f"{INSTALL_HINT.replace('install Apptainer', 'install a current Apptainer')}"
        )
    have = [o for o in OPTIONAL if installation.has(o)]
    lacking = [o for o in OPTIONAL if not installation.has(o)]
    reason = f"{name}; exec options: {', '.join('--' + o for o in have) or 'only the basic ones'}"
    if lacking:
        reason += f"; missing: {', '.join('--' + o for o in lacking)}"
    return True, reason
