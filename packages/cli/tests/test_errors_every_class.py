"""One rule for errors: every exception class that an hpcbox package exports maps to one line with a
fix and a documented exit code; the "unexpected ... report the traceback" line is left for real bugs."""

from __future__ import annotations

import errno
import importlib
import inspect
import os
import pkgutil
from typing import List, Tuple

import pytest

from hpcbox import errors

PACKAGES = ("hpcbox", "hpcbox_registry", "hpcbox_layers", "hpcbox_oci_bundle", "hpcbox_engine_runc",
            "hpcbox_engine_ptrace", "hpcbox_engine_preload", "hpcbox_engine_singularity")


def _modules(package: str) -> List[object]:
    root = importlib.import_module(package)
    found = [root]
    for info in pkgutil.walk_packages(getattr(root, "__path__", []), prefix=f"{package}."):
        if info.name.endswith("__main__"):
            continue
        try:
            found.append(importlib.import_module(info.name))
        except ImportError:
            continue
    return found


def exported_exceptions() -> List[Tuple[str, type]]:
    seen = {}
    for package in PACKAGES:
        try:
            modules = _modules(package)
        except ImportError:
            continue
        for module in modules:
            for name, obj in vars(module).items():
                if (inspect.isclass(obj) and issubclass(obj, BaseException) and not name.startswith("_")
                        and obj.__module__.split(".")[0] == package):
                    seen[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return sorted(seen.items())


def _instance(cls: type) -> BaseException:
    """An instance made with plausible arguments for each required parameter."""
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    args, kwargs = [], {}
    for p in params:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or (p.default is not p.empty and p.name != "fix"):
            continue
        text = p.name.lower()
        value = (3 if "index" in text or "code" in text or "limit" in text or p.annotation in (int, "int")
                 else f"the {p.name}")
        if p.kind == p.KEYWORD_ONLY:
            kwargs[p.name] = value
        else:
            args.append(value)
    return cls(*args, **kwargs)


CLASSES = exported_exceptions()


def test_the_walk_finds_every_package_tree():
    names = {name for name, _ in CLASSES}
    for expected in ("hpcbox_registry.errors.DigestMismatchError", "hpcbox_layers.errors.UnsafeEntryError",
                     "hpcbox_oci_bundle.errors.BundleError", "hpcbox_engine_runc.errors.UnavailableError",
                     "hpcbox.store.layout.StoreCorruptError", "hpcbox.store.lock.LockBusy",
                     "hpcbox.containers.errors.ContainerExistsError"):
        assert expected in names
    assert len(CLASSES) >= 30


def test_the_walk_knows_every_package_of_the_monorepo():
    """A new package (packages/*/src/<import name>) must join PACKAGES, or its errors go unchecked."""
    from pathlib import Path

    packages = Path(__file__).resolve().parents[2]
    found = {p.name for p in packages.glob("*/src/*") if (p / "__init__.py").is_file()}
    if "hpcbox" not in found:
        pytest.skip("run outside the monorepo's tree")
    assert found == set(PACKAGES)


def test_every_module_of_every_installed_package_imports():
    """A module that fails to import hides its exception classes from the walk: only a package that
    is not installed at all (a package tested alone) may be left out."""
    broken = []
    for package in PACKAGES:
        try:
            root = importlib.import_module(package)
        except ImportError:
            continue
        for info in pkgutil.walk_packages(getattr(root, "__path__", []), prefix=f"{package}."):
            if info.name.endswith("__main__") or not info.name.rsplit(".", 1)[-1].isidentifier():
                continue  # (libhpcbox-preload*.so: a C library beside the modules, not one of them)
            try:
                importlib.import_module(info.name)
            except ImportError as exc:
                missing = (exc.name or "").split(".")[0]
                if missing not in PACKAGES or _importable(missing):
                    broken.append(f"{info.name}: {exc}")
    assert broken == []


def _importable(package: str) -> bool:
    try:
        importlib.import_module(package)
    except ImportError:
        return False
    return True


@pytest.mark.parametrize("name, cls", CLASSES, ids=[name for name, _ in CLASSES])
def test_every_exported_exception_has_a_line_a_fix_and_a_documented_code(name, cls):
    message, code = errors.describe(_instance(cls))
    assert not message.startswith("unexpected "), (name, message)
    assert "HPCBOX_DEBUG" not in message
    assert "\n" not in message and "; " in message, message
    assert code in errors.DOCUMENTED_CODES


def test_a_real_bug_still_asks_for_the_traceback():
    message, code = errors.describe(ZeroDivisionError("division by zero"))
    assert message.startswith("unexpected ZeroDivisionError") and "HPCBOX_DEBUG=1" in message
    assert code == errors.EXIT_FAILURE


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EDQUOT, errno.EFBIG])
def test_a_layer_error_from_a_full_disk_is_a_storage_error(err):
    from hpcbox_layers import LayerError

    try:
        try:
            raise OSError(err, os.strerror(err))
        except OSError as cause:
            raise LayerError(f"layer 0: cannot write entry 'usr/bin/x': {os.strerror(err)}") from cause
    except LayerError as exc:
        message, code = errors.describe(exc)
    assert code == errors.EXIT_STORAGE
    assert message.startswith("layer 0: cannot write entry") and "--home" in message
    assert message.lower().count(os.strerror(err).lower()) <= 1, message  # said once


def test_a_package_error_from_a_full_disk_that_does_not_say_so_gets_the_reason():
    from hpcbox_layers import LayerError

    try:
        try:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        except OSError as cause:
            raise LayerError("layer 0: cannot finish 'usr/bin/x'") from cause
    except LayerError as exc:
        message, code = errors.describe(exc)
    assert code == errors.EXIT_STORAGE
    assert message.startswith("layer 0: cannot finish 'usr/bin/x': no space left on device; free"), message


@pytest.mark.parametrize("cls_name, code", [
    ("ExtractionLimitError", errors.EXIT_STORAGE),
    ("UnsafeEntryError", errors.EXIT_INTEGRITY),
    ("CorruptLayerError", errors.EXIT_INTEGRITY),
    ("UnsupportedMediaTypeError", errors.EXIT_FAILURE),
])
def test_layer_errors_codes(cls_name, code):
    import hpcbox_layers

    cls = getattr(hpcbox_layers, cls_name)
    assert errors.describe(_instance(cls))[1] == code


def test_a_damaged_store_blob_is_an_integrity_error_naming_the_repair():
    from hpcbox.store import StoreCorruptError

    message, code = errors.describe(StoreCorruptError("layer blob sha256:ab is damaged; run 'hpcbox pull x'"))
    assert code == errors.EXIT_INTEGRITY and message.endswith("run 'hpcbox pull x'")


def test_the_exit_code_table_is_documented():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for code in errors.DOCUMENTED_CODES:
        assert f"\n| {code} |" in readme, code
