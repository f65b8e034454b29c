"""Random stacks of layers, applied for real and by the reference model of the OCI rules: same tree."""

import io
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from layers_testkit import (
    Model,
    ModelCorrupt,
    ModelUnsafe,
    canonical,
    dir_,
    file,
    hardlink,
    opaque,
    snapshot_tree,
    symlink,
    tar_bytes,
    whiteout,
)

from hpcbox_layers import CorruptLayerError, UnsafeEntryError, apply_layers

paths = st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3).map("/".join)
dir_paths = st.lists(st.sampled_from(["a", "b", "c"]), min_size=0, max_size=2).map("/".join)
prefixed = st.tuples(st.sampled_from(["", "./"]), paths).map("".join)
mtimes = st.integers(1_000_000_000, 2_000_000_000)
file_modes = st.sampled_from([0o644, 0o755, 0o000, 0o400, 0o4755, 0o2755, 0o6755, 0o1644, 0o600])
dir_modes = st.sampled_from([0o755, 0o700, 0o000, 0o555, 0o2775, 0o1777])
link_texts = st.sampled_from(["a", "b/c", "../a", "/abs/x", "/", ".", "c/../a", "../../.."])

entries = st.one_of(
    st.builds(file, prefixed, st.binary(max_size=24), file_modes, mtimes),
    st.builds(dir_, prefixed, dir_modes, mtimes),
    st.builds(symlink, prefixed, link_texts, mtimes),
    st.builds(hardlink, prefixed, paths),
    st.builds(whiteout, prefixed),
    st.builds(opaque, dir_paths),
)
stacks = st.lists(st.lists(entries, max_size=12), min_size=1, max_size=4)


def run_model(stack):
    model = Model()
    try:
        for layer in stack:
            model.apply(layer)
    except ModelUnsafe:
        return model, UnsafeEntryError
    except ModelCorrupt:
        return model, CorruptLayerError
    return model, None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stack=stacks, as_paths=st.booleans())
def test_random_stacks_match_the_model(stack, as_paths):
    model, error = run_model(stack)
    with tempfile.TemporaryDirectory() as tmp:
        sources = []
        for i, layer in enumerate(stack):
            blob = tar_bytes(layer)
            if as_paths:
                p = Path(tmp, f"layer{i}.tar")
                p.write_bytes(blob)
                sources.append(p)
            else:
                sources.append(io.BytesIO(blob))
        target = Path(tmp, "rootfs")
        if error is not None:
            with pytest.raises(error):
                apply_layers(target, sources)
            return
        report = apply_layers(target, sources)
        expected = model.snapshot()
        real = snapshot_tree(str(target))
        for path, value in expected.items():
            if value[0] == "dir" and value[3] is None and path in real:
                real[path] = (*real[path][:3], None, None)  # implicit parents: mtime unspecified
        assert canonical(real) == canonical(expected)
        assert report.layers == len(stack)
        assert not any(".wh." in p for p in real)
