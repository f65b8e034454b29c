import pytest
from hypothesis import given
from hypothesis import strategies as st

from hpcbox_registry import ImageReference, InvalidReferenceError

HEX = "a" * 64
D = f"sha256:{HEX}"


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("alpine", "docker.io", "library/alpine", "latest", None),
        ("alpine:3.19", "docker.io", "library/alpine", "3.19", None),
        ("user/app", "docker.io", "user/app", "latest", None),
        ("docker.io/alpine", "docker.io", "library/alpine", "latest", None),
        ("index.docker.io/library/alpine:edge", "docker.io", "library/alpine", "edge", None),
        ("registry-1.docker.io/user/app", "docker.io", "user/app", "latest", None),
        ("127.0.0.1:5000/team/app", "127.0.0.1:5000", "team/app", "latest", None),
        (f"127.0.0.1:5000/team/app@{D}", "127.0.0.1:5000", "team/app", None, D),
        (f"ghcr.io/a/b/c/d:v1.2-rc_3@{D}", "ghcr.io", "a/b/c/d", "v1.2-rc_3", D),
        ("localhost/app", "localhost", "app", "latest", None),
        ("localhost:5000/app:1", "localhost:5000", "app", "1", None),
        ("[::1]:5000/app:1", "[::1]:5000", "app", "1", None),
        ("Registry.Example.com/app", "Registry.Example.com", "app", "latest", None),
        ("my-registry.example:443/a.b__c-d/e", "my-registry.example:443", "a.b__c-d/e", "latest", None),
        (f"alpine@{D}", "docker.io", "library/alpine", None, D),
        ("localhost:5000", "docker.io", "library/localhost", "5000", None),  # Docker reads this the same way
    ],
)
def test_parse(text, registry, repository, tag, digest):
    ref = ImageReference.parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, digest)
    assert ImageReference.parse(str(ref)) == ref


def test_canonical_string_and_helpers():
    assert str(ImageReference.parse("alpine")) == "docker.io/library/alpine:latest"
    ref = ImageReference.parse("127.0.0.1:5000/repo:1")
    assert str(ref.with_digest(D)) == f"127.0.0.1:5000/repo:1@{D}"
    assert str(ImageReference.parse(f"127.0.0.1:5000/repo@{D}")) == f"127.0.0.1:5000/repo@{D}"
    assert ref.reference == "1" and ref.with_digest(D).reference == D
    assert ImageReference.parse("alpine").familiar() == "alpine:latest"
    assert ImageReference.parse("user/app:2").familiar() == "user/app:2"
    assert ref.name == "127.0.0.1:5000/repo"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "empty"),
        ("Alpine", "lower case"),
        ("user/App", "lower case"),
        ("alpine:", "tag"),
        ("alpine:-bad", "tag"),
        ("alpine:" + "x" * 129, "tag"),
        ("alpine@sha256:abc", "digest"),
        ("alpine@sha256:" + "A" * 64, "digest"),
        ("alpine@md5:" + "a" * 32, "algorithm"),
        ("https://registry.example/app", "scheme"),
        ("a//b", "repository"),
        ("app/", "repository"),
        ("_app", "repository"),
        ("app--x_.y", "repository"),
        (HEX, "image id"),
        ("host:5000/" + "a" * 300, "longer"),
        ("-host.example/app", "registry"),
        ("127.0.0.1:99999/x/y:1", "invalid port 99999"),
        ("registry.example:0/app", "invalid port 0"),
    ],
)
def test_invalid(text, words):
    with pytest.raises(InvalidReferenceError) as err:
        ImageReference.parse(text)
    msg = str(err.value)
    assert words in msg
    assert "\n" not in msg and "; " in msg  # one line: the problem, then the fix


def test_with_digest_validates():
    with pytest.raises(InvalidReferenceError):
        ImageReference.parse("alpine").with_digest("sha256:nothex")


_component = st.from_regex(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*", fullmatch=True).filter(
    lambda s: len(s) < 30
)
_host = st.one_of(
    st.just("docker.io"),
    st.from_regex(
        r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?(\.[a-z0-9]{1,8}){1,2}(:[0-9]{1,5})?", fullmatch=True
    ).filter(lambda h: ":" not in h or 0 < int(h.rsplit(":", 1)[1]) <= 65535),  # a port is 1 to 65535
    st.builds(lambda a, p: f"127.0.0.{a}:{p}", st.integers(0, 255), st.integers(1, 65535)),
)
_tag = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)
_digest = st.one_of(st.none(), st.from_regex(r"sha256:[0-9a-f]{64}", fullmatch=True))


@given(_host, st.lists(_component, min_size=1, max_size=4), st.one_of(st.none(), _tag), _digest)
def test_round_trip(host, components, tag, digest):
    repository = "/".join(components)
    if host == "docker.io" and len(components) == 1:
        repository = f"library/{repository}"
    if tag is None and digest is None:
        tag = "latest"
    ref = ImageReference(host, repository, tag, digest)
    parsed = ImageReference.parse(str(ref))
    assert parsed == ref
    assert str(parsed) == str(ref)


@given(st.text(max_size=40))
def test_parse_never_fails_other_than_invalid_reference(text):
    try:
        ref = ImageReference.parse(text)
    except InvalidReferenceError:
        return
    assert ImageReference.parse(str(ref)) == ref
