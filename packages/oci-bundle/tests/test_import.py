"""The package imports alone and stays cheap: `hpcbox run` imports it on every start."""

from __future__ import annotations

import subprocess
import sys

import hpcbox_oci_bundle


def test_version_and_api():
    assert hpcbox_oci_bundle.__version__ == "0.2.0"
    for name in hpcbox_oci_bundle.__all__:
        assert hasattr(hpcbox_oci_bundle, name), name


def test_import_pulls_in_no_heavy_modules():
    # Measured against the bare interpreter: some site setups import pathlib at start-up.
    code = ("import sys; before = set(sys.modules); import hpcbox_oci_bundle; "
            "heavy = {'dataclasses', 'pathlib', 'subprocess', 'shutil', 'collections', 'typing', 'struct'} "
            "& (set(sys.modules) - before); "
            "print(sorted(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
