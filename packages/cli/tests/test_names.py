"""hpcbox.names: a bare `run` argument is a misspelt container name, or an image to pull."""

from __future__ import annotations

import pytest

from hpcbox import names

CONTAINERS = ["work", "c_exist", "analysis-2024"]


@pytest.mark.parametrize("text", ["debian", "alpine", "ubuntu", "python", "eclipse-temurin",
                                  "debian:12", "library/debian", "ghcr.io/x/y", "c_x:1", "a@sha256:ab"])
def test_images_are_pulled(text):
    assert names.misspelt_container(text, CONTAINERS, ["busybox"]) is None


@pytest.mark.parametrize("text, close", [
    ("c_nonexist", ["c_exist"]),         # underscore: Docker's container names, no official image
    ("wrok", ["work"]),                  # close to a container's name
    ("Work", ["work"]),                  # uppercase: never an image reference
    ("analysis-2042", ["analysis-2024"]),
    ("0123456789abcdef", []),            # a container id prefix
    ("zz_top", []),
])
def test_container_names_are_not_pulled(text, close):
    assert names.misspelt_container(text, CONTAINERS, ["busybox"]) == close


def test_image_names_are_suggested_too():
    assert names.misspelt_container("busy_box", [], ["busybox"]) == ["busybox"]
