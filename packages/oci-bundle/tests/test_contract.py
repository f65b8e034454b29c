"""The engine contract's pieces: base errors with problem, hint and code; the exit codes; the
annotation keys; the capabilities; the typed Engine protocol (matched by shape)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import hpcbox_oci_bundle
import pytest
from hpcbox_oci_bundle import contract


def test_an_error_given_whole_is_split_into_problem_and_hint():
    error = hpcbox_oci_bundle.EngineError("the runner is missing; reinstall hpcbox-engine-runc")
    assert str(error) == "the runner is missing; reinstall hpcbox-engine-runc"
    assert error.problem == "the runner is missing" and error.hint == "reinstall hpcbox-engine-runc"
    assert error.code == contract.EXIT_ENGINE


def test_an_error_given_in_parts_joins_them_on_one_line():
    error = hpcbox_oci_bundle.UnavailableError("no user namespaces", "ask the administrator", code=3)
    assert str(error) == "no user namespaces; ask the administrator"
    assert error.code == 3 and isinstance(error, hpcbox_oci_bundle.EngineError)
    assert str(hpcbox_oci_bundle.EngineError("bare problem")) == "bare problem"


def test_a_bundle_error_is_a_value_error_of_the_contract_with_code_1():
    error = hpcbox_oci_bundle.BundleError("process.cwd 'x' is not absolute: write it as /x")
    assert isinstance(error, ValueError) and isinstance(error, hpcbox_oci_bundle.Error)
    assert not isinstance(error, hpcbox_oci_bundle.EngineError)
    assert error.code == 1 and error.hint == ""


def test_exit_codes_are_dockers():
    assert (contract.EXIT_ENGINE, contract.EXIT_NOT_EXECUTABLE, contract.EXIT_NOT_FOUND) == (125, 126, 127)
    assert contract.EXIT_CODES == (125, 126, 127)


def test_annotation_keys_are_hpcbox_keys_and_unique():
    keys = {name: value for name, value in vars(contract).items() if name.startswith("ANNOTATION_")}
    assert len(keys) >= 15
    assert all(value.startswith("org.hpcbox.") for value in keys.values())
    assert len(set(keys.values())) == len(keys)
    assert contract.ANNOTATIONS_RUNC_OVERLAY == (contract.ANNOTATION_RUNC_OVERLAY_LOWER,
                                                 contract.ANNOTATION_RUNC_OVERLAY_UPPER,
                                                 contract.ANNOTATION_RUNC_OVERLAY_WORK)


def test_capabilities_are_listed_once():
    caps = [value for name, value in vars(contract).items() if name.startswith("CAP_")]
    assert sorted(caps) == sorted(contract.CAPABILITIES) and len(set(caps)) == len(caps)


class _Shaped:
    name = "shaped"
    capabilities = frozenset({contract.CAP_GPUS})

    def available(self, **hints):
        return True, "always"

    def start(self, bundle, *, bundle_dir=None, stdin=None, stdout=None, stderr=None):
        raise hpcbox_oci_bundle.EngineError("cannot start; this is a test")

    def run(self, bundle, *, bundle_dir=None, stdin=None, stdout=None, stderr=None, forward_signals=True):
        return 0


def test_the_protocol_matches_by_shape():
    assert isinstance(_Shaped(), hpcbox_oci_bundle.Engine)

    class NoRun:
        name = "x"
        capabilities = frozenset()

        def available(self, **hints):
            return False, "never"

    assert not isinstance(NoRun(), hpcbox_oci_bundle.Engine)


def test_the_contract_imports_nothing_and_the_protocol_loads_only_when_asked():
    tree = ast.parse(Path(contract.__file__).read_text())
    imports = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert [node.module for node in imports] == ["__future__"]  # the rest only under TYPE_CHECKING
    code = ("import sys, hpcbox_oci_bundle; print('hpcbox_oci_bundle.protocol' in sys.modules); "
            "hpcbox_oci_bundle.Engine; print('hpcbox_oci_bundle.protocol' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "True"]


def test_unknown_attributes_still_fail():
    with pytest.raises(AttributeError):
        hpcbox_oci_bundle.NoSuchThing  # noqa: B018
