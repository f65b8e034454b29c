"""NVIDIA GPUs in containers: find the host driver's user space and device nodes, check the image's
CUDA needs against the driver, and make the driver visible in the container.

Two ways in (both keep the image itself untouched unless asked):

- ``hpcbox run --gpus all|N,M`` (alias ``--nv``): every driver library is bound read-only at
  ``/usr/local/nvidia/lib64/<name>`` (the directory NVIDIA's CUDA images already put on
  ``LD_LIBRARY_PATH``), the tools at ``/usr/local/nvidia/bin/<name>``, the ``/dev/nvidia*`` nodes at
  their own paths and the GSP firmware at its host path. Extra mounts of the OCI config: each engine
  makes them visible its own way (mount namespace for runc, path translation for ptrace/preload).
- ``hpcbox setup --nvidia CONTAINER`` copies the libraries and tools into the container (like
  udocker's ``setup --nvidia``) and records what it wrote in ``container.json`` so that ``setup
  --nvidia`` again refreshes it after a driver update and ``setup --no-nvidia`` removes it. Device
  nodes cannot be copied; runs of such a container bind them.

Discovery looks in ``ldconfig -p`` and the usual library directories, under ``$HPCBOX_NVIDIA_ROOT``
(default ``/``: tests point it at a fake driver tree). The CUDA version a driver supports comes from
NVIDIA's table of minimum driver versions (no subprocess), or from ``nvidia-smi`` when the table
cannot tell. The image's need comes from ``NVIDIA_REQUIRE_CUDA`` (``cuda>=X.Y``), else ``CUDA_VERSION``;
``NVIDIA_DISABLE_REQUIRE=1`` skips the check (images with CUDA's forward-compatibility libraries).
"""

from __future__ import annotations

import os
import re
import sys
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from hpcbox_oci_bundle import contract
from hpcbox_oci_bundle.elf import word_size

from hpcbox.errors import EXIT_FAILURE, HpcboxError, UsageError

TYPE_CHECKING = False  # names for the type checker only
if TYPE_CHECKING:
    from types import ModuleType

ENV_ROOT = "HPCBOX_NVIDIA_ROOT"
LIB_DIR = "/usr/local/nvidia/lib64"
BIN_DIR = "/usr/local/nvidia/bin"

#: Name prefixes of the driver's user-space libraries (the ``libnvidia-container*`` toolkit is not driver).
LIB_PREFIXES = ("libcuda.so", "libcudadebugger.so", "libnvidia-", "libnvcuvid.so", "libnvoptix.so",
                "libGLX_nvidia.so", "libEGL_nvidia.so", "libGLESv2_nvidia.so", "libGLESv1_CM_nvidia.so",
                "libvdpau_nvidia.so")
LIB_EXCLUDE = ("libnvidia-container",)
BINARIES = ("nvidia-smi", "nvidia-debugdump", "nvidia-persistenced", "nvidia-cuda-mps-control",
            "nvidia-cuda-mps-server")
CONTROL_NODES = ("nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset")
#: Sockets of the driver's daemons (persistence, fabric manager) that tools in the container talk to.
SOCKETS = ("/run/nvidia-persistenced/socket", "/run/nvidia-fabricmanager/socket")
BIN_DIRS = ("/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin", "/usr/local/nvidia/bin")

#: The lowest Linux driver of each CUDA release (NVIDIA's CUDA toolkit release notes, table 3): a driver
#: supports the newest CUDA whose minimum it reaches; nvidia-smi's "CUDA Version" is the same number.
CUDA_MIN_DRIVER: Tuple[Tuple[Tuple[int, int], str], ...] = (
    ((13, 0), "580.65.06"), ((12, 9), "575.51.03"), ((12, 8), "570.26"), ((12, 6), "560.28.03"),
    ((12, 5), "555.42.02"), ((12, 4), "550.54.14"), ((12, 3), "545.23.06"), ((12, 2), "535.54.03"),
    ((12, 1), "530.30.02"), ((12, 0), "525.60.13"), ((11, 8), "520.61.05"), ((11, 7), "515.43.04"),
    ((11, 6), "510.39.01"), ((11, 5), "495.29.05"), ((11, 4), "470.42.01"), ((11, 3), "465.19.01"),
    ((11, 2), "460.27.03"), ((11, 1), "455.23"), ((11, 0), "450.36.06"), ((10, 2), "440.33"),
    ((10, 1), "418.39"), ((10, 0), "410.48"), ((9, 2), "396.26"), ((9, 1), "390.46"), ((9, 0), "384.81"),
)

_MULTIARCH = {"x86_64": "x86_64-linux-gnu", "aarch64": "aarch64-linux-gnu",
              "ppc64le": "powerpc64le-linux-gnu"}
_LDCONFIG_ABI = ("x86-64", "AArch64", "64bit")  # ldconfig -p's tags of 64-bit libraries
_VERSION_RE = re.compile(r"^\d+(\.\d+)+$")


class GpuError(HpcboxError):
    def __init__(self, problem: str, fix: str, code: int = EXIT_FAILURE):
        super().__init__(problem, fix, code)


class Driver:
    """What was found: ``libraries`` {name in the container: host file}, ``binaries`` {name: host file},
    ``devices`` {path in the container: host node}, ``gpus`` {index: host node}, ``firmware`` [host dir],
    ``version`` (e.g. "535.104.05" or None) and the ``root`` searched."""

    __slots__ = ("binaries", "devices", "firmware", "gpus", "libraries", "root", "sockets", "version")

    def __init__(self, root: str):
        self.root = root
        self.libraries: Dict[str, str] = {}
        self.binaries: Dict[str, str] = {}
        self.devices: Dict[str, str] = {}
        self.gpus: Dict[int, str] = {}
        self.firmware: List[str] = []
        self.sockets: List[str] = []
        self.version: Optional[str] = None

    def guest(self, host_path: str) -> str:
        """The path of a host file of the searched root, as the container sees it."""
        if self.root == "/":
            return host_path
        return "/" + os.path.relpath(host_path, self.root)


def search_root(env: Optional[Mapping[str, str]] = None) -> str:
    env = os.environ if env is None else env
    root = env.get(ENV_ROOT) or "/"
    return os.path.abspath(root)


def _under(root: str, path: str) -> str:
    return path if root == "/" else os.path.join(root, path.lstrip("/"))


def library_dirs() -> List[str]:
    arch = _MULTIARCH.get(os.uname().machine, "")
    dirs = []
    if arch:
        dirs += [f"/usr/lib/{arch}", f"/lib/{arch}", f"/usr/lib/{arch}/nvidia/current"]
    dirs += ["/usr/lib64", "/lib64", "/usr/lib", "/usr/lib/nvidia", "/usr/local/nvidia/lib64",
             "/usr/lib64/nvidia"]
    return dirs


def is_driver_library(name: str) -> bool:
    return name.startswith(LIB_PREFIXES) and not name.startswith(LIB_EXCLUDE) and ".so" in name


def parse_ldconfig(text: str) -> List[str]:
    """Paths of 64-bit driver libraries in ``ldconfig -p`` output (``name (libc6,x86-64) => path``)."""
    paths = []
    for line in text.splitlines():
        name, sep, path = line.strip().partition(" => ")
        if not sep:
            continue
        lib, _, tags = name.partition(" (")
        if is_driver_library(lib) and any(tag in tags for tag in _LDCONFIG_ABI):
            paths.append(path.strip())
    return paths


def _ldconfig() -> List[str]:
    import subprocess

    for exe in ("/sbin/ldconfig", "/usr/sbin/ldconfig", "/usr/bin/ldconfig"):
        if os.path.exists(exe):
            try:
                out = subprocess.run([exe, "-p"], capture_output=True, text=True, timeout=30, check=False)
            except (OSError, subprocess.SubprocessError):
                return []
            return parse_ldconfig(out.stdout)
    return []


def discover(root: Optional[str] = None) -> Driver:
    """The host driver under *root* (default ``$HPCBOX_NVIDIA_ROOT`` or ``/``); GpuError if there is none."""
    root = search_root() if root is None else os.path.abspath(root)
    driver = Driver(root)
    candidates = _ldconfig() if root == "/" else []
    for directory in library_dirs():
        host_dir = _under(root, directory)
        try:
            names = sorted(os.listdir(host_dir))
        except OSError:
            continue
        candidates += [os.path.join(host_dir, n) for n in names if is_driver_library(n)]
    for path in candidates:
        name = os.path.basename(path)
        if name in driver.libraries or not os.path.isfile(path):  # first one wins; dangling links skipped
            continue
        if not native_elf(path):  # e.g. RHEL's 32-bit libraries in /usr/lib
            continue
        driver.libraries[name] = os.path.realpath(path)
    if not any(n.startswith("libcuda.so") for n in driver.libraries):
        where = "" if root == "/" else f" under {ENV_ROOT}={root}"
        raise GpuError(f"no NVIDIA driver found on this host{where} (no libcuda.so in 'ldconfig -p' or "
                       f"{', '.join(library_dirs()[:3])})",
                       "run on a GPU node with the NVIDIA driver installed (in Slurm, ask for a GPU with "
                       "--gpus or --gres=gpu:1), or set HPCBOX_NVIDIA_ROOT to where the driver lives")
    for name in BINARIES:
        for directory in BIN_DIRS:
            path = _under(root, os.path.join(directory, name))
            if os.path.isfile(path) and os.access(path, os.X_OK):
                driver.binaries[name] = os.path.realpath(path)
                break
    _find_devices(driver)
    for socket in SOCKETS:
        path = _under(root, socket)
        if os.path.exists(path):
            driver.sockets.append(path)
    driver.version = _driver_version(driver)
    if driver.version:
        firmware = _under(root, f"/lib/firmware/nvidia/{driver.version}")
        if os.path.isdir(firmware):
            driver.firmware.append(firmware)
    return driver


def _find_devices(driver: Driver) -> None:
    dev = _under(driver.root, "/dev")
    try:
        names = sorted(os.listdir(dev))
    except OSError:
        names = []
    for name in names:
        path = os.path.join(dev, name)
        if name in CONTROL_NODES:
            driver.devices[f"/dev/{name}"] = path
        elif name.startswith("nvidia") and name[6:].isdigit():
            driver.gpus[int(name[6:])] = path
            driver.devices[f"/dev/{name}"] = path
    caps = os.path.join(dev, "nvidia-caps")
    try:
        for name in sorted(os.listdir(caps)):
            driver.devices[f"/dev/nvidia-caps/{name}"] = os.path.join(caps, name)
    except OSError:
        pass


def _driver_version(driver: Driver) -> Optional[str]:
    """From libcuda's file name (``libcuda.so.535.104.05``), else /proc/driver/nvidia/version."""
    for name, real in driver.libraries.items():
        if name.startswith("libcuda.so"):
            suffix = os.path.basename(real)[len("libcuda.so."):]
            if _VERSION_RE.match(suffix) and suffix.count(".") >= 1:
                return suffix
    try:
        with open(_under(driver.root, "/proc/driver/nvidia/version"), encoding="utf-8") as handle:
            text = handle.read()
    except OSError:
        return None
    match = re.search(r"Kernel Module\s+(?:for \S+\s+)?(\d+\.\d+(?:\.\d+)?)", text)
    return match.group(1) if match else None


def _numbers(text: str) -> Tuple[int, ...]:
    return tuple(int(part) for part in text.split(".") if part.isdigit())


def cuda_of_driver(version: str) -> Optional[Tuple[int, int]]:
    """The newest CUDA release a driver supports, from the table; None when older than all of it."""
    have = _numbers(version)
    for cuda, minimum in CUDA_MIN_DRIVER:
        if have >= _numbers(minimum):
            return cuda
    return None


def min_driver(cuda: Tuple[int, int]) -> Optional[str]:
    """The lowest driver for *cuda* (the next listed release's minimum for an unlisted minor)."""
    for release, minimum in reversed(CUDA_MIN_DRIVER):
        if release >= cuda:
            return minimum
    return None


def parse_nvidia_smi(text: str) -> Optional[Tuple[int, int]]:
    match = re.search(r"CUDA Version:\s*(\d+)\.(\d+)", text)
    return (int(match.group(1)), int(match.group(2))) if match else None


def smi_cuda(driver: Driver) -> Optional[Tuple[int, int]]:
    """``nvidia-smi``'s "CUDA Version" (None when it is missing or fails)."""
    exe = driver.binaries.get("nvidia-smi")
    if not exe:
        return None
    import subprocess

    try:
        out = subprocess.run([exe], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_nvidia_smi(out.stdout)


def required_cuda(env: Mapping[str, str]) -> Optional[Tuple[int, int]]:
    """What the image asks for: ``cuda>=X.Y`` of NVIDIA_REQUIRE_CUDA, else X.Y of CUDA_VERSION."""
    match = re.search(r"cuda>=(\d+)\.(\d+)", env.get("NVIDIA_REQUIRE_CUDA", ""))
    if match:
        return int(match.group(1)), int(match.group(2))
    match = re.match(r"^(\d+)\.(\d+)", env.get("CUDA_VERSION", ""))
    return (int(match.group(1)), int(match.group(2))) if match else None


def _show(cuda: Tuple[int, int]) -> str:
    return f"{cuda[0]}.{cuda[1]}"


def check_cuda(driver: Driver, env: Mapping[str, str]) -> Optional[str]:
    """GpuError when the image needs a newer CUDA than the driver supports; a warning text (or None)
    when that cannot be told."""
    if env.get("NVIDIA_DISABLE_REQUIRE", "").lower() in ("1", "true", "yes"):
        return None
    need = required_cuda(env)
    if need is None:
        return None
    have = cuda_of_driver(driver.version) if driver.version else None
    newest = CUDA_MIN_DRIVER[0][0]
    if have is None or (have == newest and need > newest):
        have = smi_cuda(driver) or have  # the table cannot tell: ask the driver itself
    if have is None:
        version = f" {driver.version}" if driver.version else ""
        return (f"cannot tell which CUDA version the NVIDIA driver{version} supports (the image needs "
                f"{_show(need)}); if the program fails, compare with 'nvidia-smi'")
    if have >= need:
        return None
    minimum = min_driver(need)
    raise GpuError(f"the image needs CUDA {_show(need)} but the host's NVIDIA driver "
                   f"{driver.version or ''} supports CUDA {_show(have)} at most".replace("  ", " "),
                   f"use an image built for CUDA {_show(have)} or older"
                   f"{', or ask the admins for driver ' + minimum + ' or newer' if minimum else ''}"
                   f" (-e NVIDIA_DISABLE_REQUIRE=1 skips this check for images with CUDA's "
                   f"forward-compatibility libraries)")


# -- selection and the OCI config -----------------------------------------------------------------------

def parse_gpus(text: str) -> Optional[List[int]]:
    """``all`` -> None; ``0,2`` (or Docker's ``device=0,2``) -> [0, 2]."""
    value = text.strip().strip("\"'")
    if value.startswith("device="):
        value = value[len("device="):]
    if value == "all":
        return None
    fix = "write --gpus all or --gpus N[,M...] (GPU indices)"
    try:
        chosen = [int(part) for part in value.split(",")]
    except ValueError:
        raise UsageError(f"bad GPU list {text!r}", fix) from None
    if any(n < 0 for n in chosen) or not chosen:
        raise UsageError(f"bad GPU list {text!r}", fix)
    return list(dict.fromkeys(chosen))


SCRATCH: Dict[str, object] = {"destination": "/usr/local/nvidia", "type": "tmpfs", "source": "tmpfs",
                               "options": ["nosuid", "nodev", "mode=755", "size=1m"]}


def _bind(source: str, destination: str, readonly: bool = True) -> Dict[str, object]:
    return {"destination": destination, "type": "bind", "source": source,
            "options": ["rbind", "ro" if readonly else "rw"]}


def device_mounts(driver: Driver) -> List[Dict[str, object]]:
    """Every ``/dev/nvidia*`` node at its own path. All GPUs' nodes are bound, so that the indices of
    CUDA_VISIBLE_DEVICES mean the same GPUs in every engine (as with Singularity's --nv)."""
    if "/dev/nvidiactl" not in driver.devices or not driver.gpus:
        where = "" if driver.root == "/" else f" under {driver.root}"
        raise GpuError(f"the NVIDIA driver libraries are here but no /dev/nvidiactl and /dev/nvidiaN "
                       f"device nodes{where}",
                       "run on a node with a GPU (in Slurm, ask for one with --gpus or --gres=gpu:1), or "
                       "ask the admins to load the nvidia kernel module")
    return [_bind(host, guest, readonly=False) for guest, host in driver.devices.items()]


def library_mounts(driver: Driver) -> List[Dict[str, object]]:
    mounts = [_bind(host, f"{LIB_DIR}/{name}") for name, host in sorted(driver.libraries.items())]
    mounts += [_bind(host, f"{BIN_DIR}/{name}") for name, host in sorted(driver.binaries.items())]
    mounts += [_bind(path, driver.guest(path)) for path in driver.firmware]
    mounts += [_bind(path, driver.guest(path), readonly=False) for path in driver.sockets]
    return mounts


def native_elf(path: str) -> bool:
    """False for an ELF file of the other word size than this Python's; True otherwise (not ELF too)."""
    try:
        with open(path, "rb") as handle:
            bits = word_size(handle.read(5))
    except OSError:
        return False
    return bits is None or bits == (64 if sys.maxsize > 2**32 else 32)


def _env_list_set(env: List[str], name: str, value: str) -> None:
    prefix = name + "="
    env[:] = [e for e in env if not e.startswith(prefix)] + [prefix + value]


def _env_get(env: Sequence[str], name: str) -> Optional[str]:
    prefix = name + "="
    return next((e[len(prefix):] for e in reversed(env) if e.startswith(prefix)), None)


def _with_dir(value: Optional[str], directory: str, first: bool) -> str:
    parts = [p for p in (value or "").split(":") if p]
    if directory in parts:
        return ":".join(parts)
    return ":".join([directory, *parts] if first else [*parts, directory])


def apply(config: Dict[str, object], driver: Driver, gpus: Optional[List[int]], *, bind_libraries: bool,
          scratch: bool = False, host_env: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """Add the driver to the OCI *config*: mounts, environment, the CUDA check. Returns a warning or None.

    *gpus*: None for all, else host GPU indices (each must exist). *bind_libraries*: False for a
    container whose libraries were copied in by ``setup --nvidia`` (only the device nodes are bound).
    *scratch*: for engines with a mount namespace, a small tmpfs at /usr/local/nvidia first, which takes
    the mount points of the binds: none is left behind in the container's rootfs (an empty
    ``libcuda.so.1`` there would break later runs of a CUDA image without --gpus)."""
    host_env = os.environ if host_env is None else host_env
    if gpus is not None:
        missing = [n for n in gpus if n not in driver.gpus]
        if missing:
            have = ",".join(str(n) for n in sorted(driver.gpus)) or "none"
            raise UsageError(f"GPU {missing[0]} is not on this host (its GPUs: {have})",
                             "give indices of this host's GPUs to --gpus, or --gpus all")
    process = config["process"]
    assert isinstance(process, dict)
    env: List[str] = process["env"]
    warning = check_cuda(driver, dict(e.split("=", 1) for e in env if "=" in e))
    mounts: List[Dict[str, object]] = config.setdefault("mounts", [])  # type: ignore[assignment]
    mounts += device_mounts(driver)
    if bind_libraries:
        if scratch:
            mounts.append(SCRATCH)
        mounts += library_mounts(driver)
    _env_list_set(env, "LD_LIBRARY_PATH", _with_dir(_env_get(env, "LD_LIBRARY_PATH"), LIB_DIR, True))
    _env_list_set(env, "PATH", _with_dir(_env_get(env, "PATH"), BIN_DIR, False))
    if gpus is None:
        _env_list_set(env, "NVIDIA_VISIBLE_DEVICES", "all")
        scheduler = host_env.get("CUDA_VISIBLE_DEVICES")  # e.g. Slurm's choice for this job: keep it
        if scheduler is not None:
            _env_list_set(env, "CUDA_VISIBLE_DEVICES", scheduler)
    else:
        chosen = ",".join(str(n) for n in gpus)
        _env_list_set(env, "NVIDIA_VISIBLE_DEVICES", chosen)
        _env_list_set(env, "CUDA_VISIBLE_DEVICES", chosen)
        _env_list_set(env, "CUDA_DEVICE_ORDER", "PCI_BUS_ID")  # indices as nvidia-smi numbers them
    if driver.version:
        config.setdefault("annotations", {})[contract.ANNOTATION_NVIDIA_DRIVER] = driver.version  # type: ignore[index]
    return warning


# -- setup --nvidia: copies in the container ------------------------------------------------------------

def copy_plan(driver: Driver) -> List[Tuple[str, str, str]]:
    """(container path, "copy" or "link", host file or link target) for :func:`copy_into`. The file a
    library name points to is copied once, its other names become relative symlinks, as on the host."""
    plan: List[Tuple[str, str, str]] = []
    copied = set()
    for name, host in sorted(driver.libraries.items()):
        real = os.path.basename(host)
        if real not in copied:
            copied.add(real)
            plan.append((f"{LIB_DIR}/{real}", "copy", host))
        if name != real:
            plan.append((f"{LIB_DIR}/{name}", "link", real))
    plan += [(f"{BIN_DIR}/{name}", "copy", host) for name, host in sorted(driver.binaries.items())]
    return plan


def copy_into(root: str, plan: Sequence[Tuple[str, str, str]]) -> List[str]:
    """Carry out :func:`copy_plan` in the container tree *root* (its rootfs, or an overlay container's
    upper directory); returns the container paths written."""
    import shutil

    written: List[str] = []
    for guest, kind, source in plan:
        if kind == "link":
            _symlink(source, root, guest, written)
        else:
            _copy(shutil, source, root, guest, written)
    return written


def _inside(root: str, guest: str) -> str:
    """The host path of *guest* under *root*, refusing one whose existing directories lead out of it."""
    path = os.path.join(root, guest.lstrip("/"))
    existing = os.path.dirname(path)
    while not os.path.lexists(existing):
        existing = os.path.dirname(existing)
    if not (os.path.realpath(existing) + "/").startswith(os.path.realpath(root) + "/"):
        raise GpuError(f"{os.path.dirname(guest)} in the container leads outside of it (a symlink)",
                       "remove that symlink in the container, or use run --gpus instead of setup --nvidia")
    return path


def _copy(shutil: ModuleType, host: str, root: str, guest: str, written: List[str]) -> None:
    path = _inside(root, guest)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.lexists(path):
        os.unlink(path)
    shutil.copyfile(host, path)
    os.chmod(path, os.stat(host).st_mode & 0o755 | 0o444)
    written.append(guest)


def _symlink(target: str, root: str, guest: str, written: List[str]) -> None:
    path = _inside(root, guest)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.lexists(path):
        os.unlink(path)
    os.symlink(target, path)
    written.append(guest)


def remove_copies(root: str, guests: Sequence[str]) -> int:
    """Undo :func:`copy_into`: remove the recorded files (only those) and the directories left empty."""
    removed = 0
    for guest in guests:
        if not guest.startswith(("/usr/local/nvidia/",)):
            continue  # only what setup --nvidia writes; a damaged record must not remove other files
        path = os.path.join(root, guest.lstrip("/"))
        try:
            os.unlink(path)
            removed += 1
        except FileNotFoundError:
            pass
    for directory in (LIB_DIR, BIN_DIR, "/usr/local/nvidia"):
        try:
            os.rmdir(os.path.join(root, directory.lstrip("/")))
        except OSError:
            pass
    return removed
