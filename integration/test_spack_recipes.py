"""The Spack recipes (packaging/spack/spack_repo/hpcbox/packages/*/package.py) against the packages
they build.

Spack itself cannot be installed here (it is published neither on the Python package index nor as a
Debian 12 package), so the recipes are executed against a stand-in of what they import: the
build-system base classes (`spack_repo.builtin.build_systems.python` and `.bundle`) and the
directives of `spack.package` (version, variant, depends_on, conflicts, requires, license, when),
which only record their arguments. Checked: the layout of a Spack v1 repository (Package API v2:
`spack_repo/<namespace>/repo.yaml`, package directories named with underscores), class names by
Spack's naming rule, one recipe per distribution plus the `hpcbox` bundle, and each recipe against
its pyproject.toml: license, versions (the current one tagged v<version>), run and build
dependencies with Spack's spelling of the version ranges, the C compiler where C is compiled; a
variant per engine extra in the bundle. Not checked: Spack's concretizer, its audits, or a real
build (see packaging/README.md).
"""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import re
import sys
import types
from pathlib import Path
from typing import Dict, List

import pytest
from packaging.requirements import Requirement

try:
    import tomllib
except ImportError:  # Python < 3.11
    tomllib = pytest.importorskip("tomli", reason="reading pyproject.toml needs tomllib or tomli")

ROOT = Path(__file__).resolve().parents[1]
REPO = ROOT / "packaging" / "spack" / "spack_repo" / "hpcbox"
RECIPES = REPO / "packages"
BASES = {"spack_repo.builtin.build_systems.python": "PythonPackage",
         "spack_repo.builtin.build_systems.bundle": "BundlePackage"}
ENGINES = ("runc", "ptrace", "preload", "singularity")


class _Directive:
    def __init__(self, kind: str, args: tuple, kwargs: dict, when: List[str]):
        self.kind, self.args, self.kwargs = kind, args, kwargs
        conditions = [*when, *([kwargs["when"]] if "when" in kwargs else [])]
        self.when = " ".join(conditions)


def _stand_in() -> Dict[str, types.ModuleType]:
    """`spack.package` with directives that record themselves on the class being defined, and the
    build-system modules with the base classes; {module name: module}."""
    module = types.ModuleType("spack.package")
    pending: List[_Directive] = []
    when_stack: List[str] = []

    def directive(kind):
        def record(*args, **kwargs):
            pending.append(_Directive(kind, args, kwargs, list(when_stack)))
        return record

    @contextlib.contextmanager
    def when(condition: str):
        when_stack.append(condition)
        try:
            yield
        finally:
            when_stack.pop()

    class PackageBase:
        def __init_subclass__(cls, **kwargs):
            super().__init_subclass__(**kwargs)
            cls.directives = list(pending)
            pending.clear()

    class PythonPackage(PackageBase):
        pass

    class BundlePackage(PackageBase):
        pass

    names = {"when": when}
    for kind in ("version", "variant", "depends_on", "conflicts", "requires", "license", "maintainers"):
        names[kind] = directive(kind)
    module.__dict__.update(names)
    module.__all__ = list(names)
    modules = {"spack": types.ModuleType("spack"), "spack.package": module}
    for name in ("spack_repo", "spack_repo.builtin", "spack_repo.builtin.build_systems"):
        modules[name] = types.ModuleType(name)
    for name, base in zip(BASES, (PythonPackage, BundlePackage)):
        modules[name] = types.ModuleType(name)
        setattr(modules[name], base.__name__, base)
    return modules


def _package_name(directory: Path) -> str:
    """Package API v2 names a package's directory with underscores for the dashes of its name."""
    return directory.name.replace("_", "-")


def _class_name(package_name: str) -> str:
    """Spack's rule (spack.util.naming.mod_to_class): CamelCase of the dash-separated words."""
    return "".join(part.capitalize() for part in package_name.split("-"))


@pytest.fixture(scope="module")
def recipes(monkeypatch_module) -> Dict[str, type]:
    for name, module in _stand_in().items():
        monkeypatch_module.setitem(sys.modules, name, module)
    loaded = {}
    for path in sorted(RECIPES.glob("*/package.py")):
        spec = importlib.util.spec_from_file_location(f"_spack_recipe_{path.parent.name}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        name = _package_name(path.parent)
        loaded[name] = getattr(module, _class_name(name))
    return loaded


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def _pyprojects() -> Dict[str, dict]:
    """{folder under packages/: parsed pyproject.toml} for the distributions with code."""
    found = {}
    for path in sorted((ROOT / "packages").glob("*/pyproject.toml")):
        if (path.parent / "src").is_dir():
            found[path.parent.name] = tomllib.loads(path.read_text())
    return found


def _spack_name(requirement: str) -> str:
    return "py-" + Requirement(requirement).name.lower().replace("_", "-")


def _spack_range(requirement: str) -> str:
    """Spack's spelling of a version range: >=A -> @A:, >=A.B,<A.(B+1) -> @A.B, none -> ''."""
    spec = Requirement(requirement).specifier
    lower = [s.version for s in spec if s.operator == ">="]
    upper = [s.version for s in spec if s.operator == "<"]
    assert len(spec) == len(lower) + len(upper) and len(lower) <= 1 and len(upper) <= 1, requirement
    if not lower:
        assert not upper, requirement
        return ""
    if not upper:
        return f"@{lower[0]}:"
    major, minor = lower[0].split(".")[:2]
    assert upper[0] == f"{major}.{int(minor) + 1}", f"{requirement}: only whole minor series are mapped"
    return f"@{lower[0]}"


def _deps(cls) -> Dict[str, tuple]:
    """{spec: types} of the recipe's unconditional depends_on."""
    out = {}
    for d in cls.directives:
        if d.kind == "depends_on" and not d.when:
            kinds = d.kwargs.get("type", ("build", "link"))
            out[d.args[0]] = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    return out


def _version_of(folder: str) -> str:
    about = {}
    (init,) = (ROOT / "packages" / folder / "src").glob("*/__about__.py")
    exec(init.read_text(), about)
    return about["__version__"]


def test_repository_layout_is_spacks():
    """Spack v1: spack_repo/<namespace>/repo.yaml declares the namespace and the Package API."""
    text = (REPO / "repo.yaml").read_text()
    assert re.search(r"^  namespace: hpcbox$", text, re.M) and re.search(r"^  api: v2\.\d+$", text, re.M)
    for directory in RECIPES.iterdir():
        assert re.fullmatch(r"[a-z][a-z0-9_]*", directory.name), directory
        assert sorted(p.name for p in directory.iterdir() if p.name != "__pycache__") == ["package.py"]


def test_every_recipe_imports_its_build_system_and_spack_package():
    for path in RECIPES.glob("*/package.py"):
        tree = ast.parse(path.read_text())
        imports = [(i.module, [a.name for a in i.names]) for i in ast.walk(tree)
                   if isinstance(i, (ast.Import, ast.ImportFrom))]
        assert imports[-1] == ("spack.package", ["*"]), path
        assert len(imports) == 2 and imports[0] in [(m, [c]) for m, c in BASES.items()], path


def test_one_recipe_per_distribution_and_the_bundle(recipes):
    wanted = {_spack_name(p["project"]["name"]) for p in _pyprojects().values()}
    assert len(wanted) == 8
    assert set(recipes) == wanted | {"hpcbox"}


@pytest.mark.parametrize("folder", sorted(_pyprojects()))
def test_python_recipe_matches_pyproject(recipes, folder):
    project = _pyprojects()[folder]
    cls = recipes[_spack_name(project["project"]["name"])]
    assert cls.__mro__[1].__name__ == "PythonPackage" and cls.__doc__.strip()
    assert cls.homepage.startswith("https://") and cls.git.endswith(".git")
    assert cls.build_directory == f"packages/{folder}" and (ROOT / cls.build_directory).is_dir()
    assert [d.args for d in cls.directives if d.kind == "license"] == [(project["project"]["license"],)]
    versions = {d.args[0]: d.kwargs for d in cls.directives if d.kind == "version"}
    current = _version_of(folder)
    assert versions[current] == {"tag": f"v{current}"}, "add the released version to every recipe"
    assert versions["main"] == {"branch": "main"}

    deps = _deps(cls)
    python = project["project"]["requires-python"]
    assert deps.pop(f"python@{python.removeprefix('>=')}:") == ("build", "run")
    for requirement in project["project"].get("dependencies", []):
        spec = _spack_name(requirement) + _spack_range(requirement)
        assert deps.pop(spec, None) == ("build", "run"), f"{folder}: {spec} missing or wrong type"
    for requirement in project["build-system"]["requires"]:
        spec = _spack_name(requirement) + _spack_range(requirement)
        if spec not in deps:  # a run dependency needed at build time too (cffi)
            assert any(s.startswith(spec) for s in _deps(cls)), f"{folder}: build dependency {spec}"
            continue
        assert deps.pop(spec) == ("build",), f"{folder}: {spec} should be a build dependency"
    compiles_c = (ROOT / "packages" / folder / "csrc").is_dir()
    assert (deps.pop("c", None) == ("build",)) == compiles_c, f"{folder}: the C compiler need"
    assert deps == {}, f"{folder}: dependencies the pyproject does not have: {deps}"


def test_bundle_has_a_variant_per_engine_extra(recipes):
    cli = _pyprojects()["cli"]["project"]
    extras = set(cli["optional-dependencies"]) - {"all"}
    assert extras == set(ENGINES)
    bundle = recipes["hpcbox"]
    assert bundle.__mro__[1].__name__ == "BundlePackage" and bundle.__doc__.strip()
    variants = {d.args[0]: d.kwargs for d in bundle.directives if d.kind == "variant"}
    assert set(variants) == extras and all(v["default"] is True for v in variants.values())
    (conflict,) = [d for d in bundle.directives if d.kind == "conflicts"]
    assert conflict.args[0] == "".join(f"~{e}" for e in ENGINES)

    versions = [d.args[0] for d in bundle.directives if d.kind == "version"]
    assert set(versions) == {"main", _version_of("cli")}
    deps = {(d.args[0], d.when, d.kwargs["type"]) for d in bundle.directives if d.kind == "depends_on"}
    expected = set()
    for ver in versions:
        expected.add((f"py-hpcbox-cli@{ver}", f"@{ver}", "run"))
        expected |= {(f"py-hpcbox-engine-{e}@{ver}", f"@{ver} +{e}", "run") for e in ENGINES}
    assert deps == expected
    py_versions = {d.args[0] for d in recipes["py-hpcbox-cli"].directives if d.kind == "version"}
    assert set(versions) == py_versions


def test_recipes_point_at_the_projects_repository(recipes):
    """Once packages/cli/pyproject.toml names the repository ([project.urls]), the recipes use it."""
    urls = {k.lower(): v.rstrip("/") for k, v in _pyprojects()["cli"]["project"].get("urls", {}).items()}
    repository = urls.get("source") or urls.get("repository") or urls.get("homepage")
    if repository is None:
        pytest.skip("packages/cli/pyproject.toml has no [project.urls] to compare the recipes with")
    for name, cls in recipes.items():
        assert cls.homepage.rstrip("/") in set(urls.values()), name
        if hasattr(cls, "git"):
            assert cls.git.removesuffix(".git") == repository.removesuffix(".git"), name
