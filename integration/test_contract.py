"""Every engine keeps the contract of hpcbox_oci_bundle (docs/architecture.md, "The engine
contract"): it matches the typed Engine protocol, declares known capabilities, takes availability
hints it does not know, raises errors on the contract's bases, and its C programs exit with the
contract's codes."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import hpcbox_oci_bundle
import pytest
from hpcbox_oci_bundle import contract

ROOT = Path(__file__).resolve().parents[1]
ENGINES = ("runc", "ptrace", "preload", "singularity")


def _engine(name):
    return importlib.import_module(f"hpcbox_engine_{name}").engine


@pytest.mark.parametrize("name", ENGINES)
def test_every_engine_matches_the_protocol(name):
    engine = _engine(name)
    assert isinstance(engine, hpcbox_oci_bundle.Engine)
    assert engine.name == name
    assert isinstance(engine.capabilities, frozenset)
    assert engine.capabilities <= set(contract.CAPABILITIES), engine.capabilities - set(contract.CAPABILITIES)


@pytest.mark.parametrize("name", ENGINES)
def test_every_engine_takes_hints_it_does_not_know(name):
    ok, reason = _engine(name).available(no_such_hint="x")
    assert isinstance(ok, bool) and reason and "\n" not in reason


@pytest.mark.parametrize("name", ENGINES)
def test_every_engine_error_derives_from_the_contract(name):
    module = importlib.import_module(f"hpcbox_engine_{name}")
    assert issubclass(module.EngineError, hpcbox_oci_bundle.EngineError)
    for other in ("BundleError", "UnavailableError"):
        cls = getattr(module, other, None)
        if cls is not None:
            assert issubclass(cls, module.EngineError)
    if hasattr(module, "UnavailableError"):
        assert issubclass(module.UnavailableError, hpcbox_oci_bundle.UnavailableError)
    assert module.EngineError("x; y").code == contract.EXIT_ENGINE


def test_capabilities_as_the_cli_plans_with_them():
    runc, ptrace, preload, singularity = (_engine(n).capabilities for n in ENGINES)
    assert contract.CAP_OVERLAY in runc and contract.CAP_SCRATCH_TMPFS in runc
    assert not (ptrace | preload | singularity) & {contract.CAP_OVERLAY, contract.CAP_SCRATCH_TMPFS}
    assert contract.CAP_PRIVATE_NETWORK not in ptrace | preload
    assert contract.CAP_STATIC_PROGRAMS not in preload


# The C programs' names for the contract's codes (the C cannot include Python): every #define of
# an EXIT_* constant with one of the contract's values must carry one of these names, and the value.
C_NAMES = {"EXIT_ENGINE": contract.EXIT_ENGINE, "EXIT_RUNTIME": contract.EXIT_ENGINE,
           "EXIT_NOEXEC": contract.EXIT_NOT_EXECUTABLE, "EXIT_NOTFOUND": contract.EXIT_NOT_FOUND}
C_SOURCES = ("packages/engine-runc/csrc", "packages/engine-ptrace/csrc", "packages/engine-preload/csrc",
             "packages/engine-preload/launcher")


def _c_defines():
    found = []
    for folder in C_SOURCES:
        for path in sorted((ROOT / folder).rglob("*.[ch]")):
            for match in re.finditer(r"^#define\s+(EXIT_\w+)\s+\(?(\d+)\)?", path.read_text(), re.M):
                found.append((path.relative_to(ROOT).as_posix(), match.group(1), int(match.group(2))))
    return found


def test_the_c_programs_exit_with_the_contracts_codes():
    defines = _c_defines()
    named = [(where, name, value) for where, name, value in defines if name in C_NAMES]
    packages = {where.split("/")[1] for where, _, _ in named}
    assert packages >= {"engine-runc", "engine-ptrace", "engine-preload"}
    for where, name, value in named:
        assert value == C_NAMES[name], f"{where}: {name} is {value}, the contract says {C_NAMES[name]}"
    for where, name, value in defines:
        if value in contract.EXIT_CODES:
            assert name in C_NAMES, f"{where}: {name} {value} is a contract code under a new name"
