"""Image reference parsing against the distribution project's own test vectors.

Facts ported from github.com/distribution/reference (reference_test.go TestReferenceParse,
normalize_test.go TestValidateReferenceName, TestValidateRemoteName, TestParseRepositoryInfo,
TestParseReferenceWithTagAndDigest, TestNormalizedSplitHostname, TestParseAnyReference).
Our parse_reference is Docker's ParseNormalizedNamed (+ default tag), so the expected values of
TestReferenceParse (written for the non-normalising Parse) are re-expressed after
normalisation: no domain -> docker.io, single component -> library/, no tag -> latest.
"""

import pytest

from specs.digest import Digest
from specs.errors import InvalidReference
from specs.reference import ImageRef, parse_reference

F64 = "f" * 64
F128 = "f" * 128

# (input, registry, repository, tag, digest) — None registry means "must fail".
PARSE = [
    ("test_com", "docker.io", "library/test_com", "latest", None),
    ("test.com:tag", "docker.io", "library/test.com", "tag", None),
    ("test.com:5000", "docker.io", "library/test.com", "5000", None),
    ("test.com/repo:tag", "test.com", "repo", "tag", None),
    ("test:5000/repo", "test:5000", "repo", "latest", None),
    ("test:5000/repo:tag", "test:5000", "repo", "tag", None),
    (f"test:5000/repo@sha256:{F64}", "test:5000", "repo", None, f"sha256:{F64}"),
    (f"test:5000/repo:tag@sha256:{F64}", "test:5000", "repo", "tag", f"sha256:{F64}"),
    ("", None, None, None, None),
    (":justtag", None, None, None, None),
    (f"@sha256:{F64}", None, None, None, None),
    ("repo@sha256:" + "f" * 34, None, None, None, None),
    (f"validname@invaliddigest:{F64}", None, None, None, None),
    ("Uppercase:tag", None, None, None, None),
    ("test:5000/Uppercase/lowercase:tag", None, None, None, None),
    ("lowercase:Uppercase", "docker.io", "library/lowercase", "Uppercase", None),
    ("a/" * 128 + "a:tag", None, None, None, None),
    # 255-char name is fine for Parse, but normalising prefixes docker.io/ -> 265 > 255
    ("a/" * 127 + "a:tag-puts-this-over-max", None, None, None, None),
    ("aa/asdf$$^/aa", None, None, None, None),
    ("sub-dom1.foo.com/bar/baz/quux", "sub-dom1.foo.com", "bar/baz/quux", "latest", None),
    ("sub-dom1.foo.com/bar/baz/quux:some-long-tag", "sub-dom1.foo.com", "bar/baz/quux", "some-long-tag", None),
    ("b.gcr.io/test.example.com/my-app:test.example.com", "b.gcr.io", "test.example.com/my-app",
     "test.example.com", None),
    ("xn--n3h.com/myimage:xn--n3h.com", "xn--n3h.com", "myimage", "xn--n3h.com", None),
    (f"xn--7o8h.com/myimage:xn--7o8h.com@sha512:{F128}", "xn--7o8h.com", "myimage", "xn--7o8h.com",
     f"sha512:{F128}"),
    ("foo_bar.com:8080", "docker.io", "library/foo_bar.com", "8080", None),
    ("foo/foo_bar.com:8080", "docker.io", "foo/foo_bar.com", "8080", None),
    ("192.168.1.1", "docker.io", "library/192.168.1.1", "latest", None),
    ("192.168.1.1:tag", "docker.io", "library/192.168.1.1", "tag", None),
    ("192.168.1.1:5000", "docker.io", "library/192.168.1.1", "5000", None),
    ("192.168.1.1/repo", "192.168.1.1", "repo", "latest", None),
    ("192.168.1.1:5000/repo", "192.168.1.1:5000", "repo", "latest", None),
    ("192.168.1.1:5000/repo:5050", "192.168.1.1:5000", "repo", "5050", None),
    ("[2001:db8::1]", None, None, None, None),
    ("[2001:db8::1]:5000", None, None, None, None),
    ("[2001:db8::1]:tag", None, None, None, None),
    ("[2001:db8::1]/repo", "[2001:db8::1]", "repo", "latest", None),
    ("[2001:db8:1:2:3:4:5:6]/repo:tag", "[2001:db8:1:2:3:4:5:6]", "repo", "tag", None),
    ("[2001:db8::1]:5000/repo", "[2001:db8::1]:5000", "repo", "latest", None),
    ("[2001:db8::1]:5000/repo:tag", "[2001:db8::1]:5000", "repo", "tag", None),
    (f"[2001:db8::1]:5000/repo@sha256:{F64}", "[2001:db8::1]:5000", "repo", None, f"sha256:{F64}"),
    (f"[2001:db8::1]:5000/repo:tag@sha256:{F64}", "[2001:db8::1]:5000", "repo", "tag", f"sha256:{F64}"),
    ("[2001:db8::]:5000/repo", "[2001:db8::]:5000", "repo", "latest", None),
    ("[::1]:5000/repo", "[::1]:5000", "repo", "latest", None),
    ("[fe80::1%eth0]:5000/repo", None, None, None, None),
    ("[fe80::1%@invalidzone]:5000/repo", None, None, None, None),
]


@pytest.mark.copied_from("distribution/reference reference_test.go TestReferenceParse",
                         changes="expected values re-expressed after Docker normalisation")
@pytest.mark.parametrize("text,registry,repository,tag,digest", PARSE, ids=[p[0][:60] or "empty" for p in PARSE])
def test_reference_parse(text, registry, repository, tag, digest):
    if registry is None:
        with pytest.raises(InvalidReference) as e:
            parse_reference(text)
        assert e.value.message.startswith("invalid image reference")
        return
    ref = parse_reference(text)
    assert (ref.transport, ref.registry, ref.repository, ref.tag) == ("docker", registry, repository, tag)
    assert (str(ref.digest) if ref.digest else None) == digest
    assert parse_reference(str(ref)) == ref  # canonical text parses back to the same reference


VALID_NAMES = [
    "docker/docker", "library/debian", "debian", "docker.io/docker/docker", "docker.io/library/debian",
    "docker.io/debian", "index.docker.io/docker/docker", "index.docker.io/library/debian", "index.docker.io/debian",
    "127.0.0.1:5000/docker/docker", "127.0.0.1:5000/library/debian", "127.0.0.1:5000/debian", "192.168.0.1",
    "192.168.0.1:80", "192.168.0.1:8/debian", "192.168.0.2:25000/debian",
    "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev", "[fc00::1]:5000/docker",
    "[fc00::1]:5000/docker/docker", "[fc00:1:2:3:4:5:6:7]:5000/library/debian",
    "docker.io/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a", "Docker/docker", "DOCKER/docker",
    # TestValidateRemoteName
    "docker-rules/docker", "docker---rules/docker", "doc/docker", "d/docker", "jess/t", "dock__er/docker",
]
INVALID_NAMES = [
    "https://github.com/docker/docker", "docker/Docker", "-docker", "-docker/docker", "-docker.io/docker/docker",
    "docker///docker", "docker.io/docker/Docker", "docker.io/docker///docker", "[fc00::1]", "[fc00::1]:5000",
    "fc00::1:5000/debian", "[fe80::1%eth0]:5000/debian", "[2001:db8:3:4::192.0.2.33]:5000/debian",
    "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
    # TestValidateRemoteName
    "docker-/docker", "-docker-/docker", "____/____", "_docker/_docker", "dock..er/docker", "dock_.er/docker",
    "dock-.er/docker", "docker/", "this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255" * 4 + "/docker",
]


@pytest.mark.copied_from("distribution/reference normalize_test.go TestValidateReferenceName, TestValidateRemoteName",
                         changes="merged into two lists")
@pytest.mark.parametrize("name", VALID_NAMES)
def test_valid_names(name):
    assert parse_reference(name).transport == "docker"


@pytest.mark.copied_from("distribution/reference normalize_test.go TestValidateReferenceName, TestValidateRemoteName",
                         changes="merged into two lists")
@pytest.mark.parametrize("name", INVALID_NAMES, ids=[n[:50] for n in INVALID_NAMES])
def test_invalid_names(name):
    with pytest.raises(InvalidReference):
        parse_reference(name)


# (remote name, familiar, full, ambiguous or None, domain)
REPO_INFO = [
    ("fooo/bar", "fooo/bar", "docker.io/fooo/bar", "index.docker.io/fooo/bar", "docker.io"),
    ("library/ubuntu", "ubuntu", "docker.io/library/ubuntu", "library/ubuntu", "docker.io"),
    ("nonlibrary/ubuntu", "nonlibrary/ubuntu", "docker.io/nonlibrary/ubuntu", None, "docker.io"),
    ("other/library", "other/library", "docker.io/other/library", None, "docker.io"),
    ("private/moonbase", "127.0.0.1:8000/private/moonbase", "127.0.0.1:8000/private/moonbase", None, "127.0.0.1:8000"),
    ("privatebase", "127.0.0.1:8000/privatebase", "127.0.0.1:8000/privatebase", None, "127.0.0.1:8000"),
    ("private/moonbase", "example.com/private/moonbase", "example.com/private/moonbase", None, "example.com"),
    ("privatebase", "example.com/privatebase", "example.com/privatebase", None, "example.com"),
    ("private/moonbase", "example.com:8000/private/moonbase", "example.com:8000/private/moonbase", None,
     "example.com:8000"),
    ("privatebasee", "example.com:8000/privatebasee", "example.com:8000/privatebasee", None, "example.com:8000"),
    ("library/ubuntu-12.04-base", "ubuntu-12.04-base", "docker.io/library/ubuntu-12.04-base",
     "index.docker.io/library/ubuntu-12.04-base", "docker.io"),
    ("library/foo", "foo", "docker.io/library/foo", "docker.io/foo", "docker.io"),
    ("library/foo/bar", "library/foo/bar", "docker.io/library/foo/bar", None, "docker.io"),
    ("store/foo/bar", "store/foo/bar", "docker.io/store/foo/bar", None, "docker.io"),
    ("bar", "Foo/bar", "Foo/bar", None, "Foo"),
    ("bar", "FOO/bar", "FOO/bar", None, "FOO"),
]


@pytest.mark.copied_from("distribution/reference normalize_test.go TestParseRepositoryInfo",
                         changes="familiar form carries the default tag")
@pytest.mark.parametrize("remote,familiar,full,ambiguous,domain", REPO_INFO)
def test_repository_info(remote, familiar, full, ambiguous, domain):
    for text in filter(None, (familiar, full, ambiguous)):
        ref = parse_reference(text)
        assert ref.registry == domain
        assert ref.repository == remote
        assert ref.name == full
        assert ref.familiar() == familiar + ":latest"


SPLIT = [
    ("test.com/foo", "test.com", "foo"), ("test_com/foo", "docker.io", "test_com/foo"),
    ("docker/migrator", "docker.io", "docker/migrator"), ("test.com:8080/foo", "test.com:8080", "foo"),
    ("test-com:8080/foo", "test-com:8080", "foo"), ("foo", "docker.io", "library/foo"),
    ("xn--n3h.com/foo", "xn--n3h.com", "foo"), ("xn--n3h.com:18080/foo", "xn--n3h.com:18080", "foo"),
    ("docker.io/foo", "docker.io", "library/foo"), ("docker.io/library/foo", "docker.io", "library/foo"),
    ("docker.io/library/foo/bar", "docker.io", "library/foo/bar"),
]


@pytest.mark.copied_from("distribution/reference normalize_test.go TestNormalizedSplitHostname", changes="none")
@pytest.mark.parametrize("text,domain,path", SPLIT)
def test_normalized_split_hostname(text, domain, path):
    ref = parse_reference(text)
    assert (ref.registry, ref.repository) == (domain, path)


ANY = [
    ("redis", "docker.io/library/redis:latest"),
    ("redis:latest", "docker.io/library/redis:latest"),
    ("docker.io/library/redis:latest", "docker.io/library/redis:latest"),
    ("redis@sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c",
     "docker.io/library/redis@sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c"),
    ("dmcgowan/myapp", "docker.io/dmcgowan/myapp:latest"),
    ("dmcgowan/myapp:latest", "docker.io/dmcgowan/myapp:latest"),
    ("docker.io/mcgowan/myapp:latest", "docker.io/mcgowan/myapp:latest"),
    ("dmcgowan/myapp@sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c",
     "docker.io/dmcgowan/myapp@sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c"),
    ("dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9",
     "docker.io/library/dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9:latest"),
    ("dbcc1", "docker.io/library/dbcc1:latest"),
]


@pytest.mark.copied_from("distribution/reference normalize_test.go TestParseAnyReference",
                         changes="named references only (bare digests are not image references here); default tag")
@pytest.mark.parametrize("text,canonical", ANY)
def test_parse_any_reference(text, canonical):
    assert str(parse_reference(text)) == canonical


@pytest.mark.copied_from("distribution/reference normalize_test.go TestParseReferenceWithTagAndDigest", changes="none")
def test_tag_and_digest():
    short = "busybox:latest@sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa"
    ref = parse_reference(short)
    assert str(ref) == "docker.io/library/" + short
    assert ref.tag == "latest" and ref.digest is not None
    assert ref.familiar() == short


# ---- our own cases: transports, helpers, error wording ----

def test_transports():
    assert parse_reference("docker://ghcr.io/o/r:1") == parse_reference("ghcr.io/o/r:1")
    oci = parse_reference("oci:./layout:v1")
    assert (oci.transport, oci.path, oci.tag, oci.registry) == ("oci", "./layout", "v1", None)
    assert str(oci) == "oci:./layout:v1"
    assert parse_reference("oci:/abs/layout").tag is None
    assert parse_reference("oci-archive:/x.tar:t").transport == "oci-archive"
    arch = parse_reference("docker-archive:/x.tar:busybox:latest")
    assert (arch.path, arch.tag) == ("/x.tar", "busybox:latest")
    for bad in ("oci:", "oci::tag", "oci:/p:", "oci:/p:-bad"):
        with pytest.raises(InvalidReference):
            parse_reference(bad)


def test_with_digest_and_localhost():
    d = Digest.parse("sha256:" + "a" * 64)
    ref = parse_reference("localhost:5000/team/base:1").with_digest(d)
    assert str(ref) == f"localhost:5000/team/base:1@{d}"
    assert parse_reference("localhost/x").registry == "localhost"
    assert parse_reference("localhost").registry == "docker.io"  # Docker's FIXME: bare name, not a host
    assert isinstance(ref, ImageRef)


@pytest.mark.parametrize("text,fragment", [
    ("", "at least one component"),
    ("Uppercase:tag", "(Uppercase) must be lowercase"),
    ("x:-bad", "invalid tag '-bad'"),
    ("x@sha256:abc", "invalid digest"),
    ("x@md5:" + "f" * 32, "unsupported algorithm 'md5'"),
    ("repo@sha256:" + "f" * 34, "sha256 needs 64"),
    ("[fe80::1%eth0]:5000/repo", "invalid registry host"),
    ("a" * 64, "64-character hexadecimal"),
    ("foo_bar.com/x", "invalid registry host 'foo_bar.com'"),  # found by fuzzing: looks like a host, is not
    ("a/" * 128 + "a", "characters long (at most 255)"),
])
def test_error_messages_name_the_rule(text, fragment):
    with pytest.raises(InvalidReference) as e:
        parse_reference(text)
    assert fragment in e.value.message
    assert e.value.exit_code == 2


def test_random_text_parses_to_a_round_trip_or_a_clean_error():
    import random

    rnd = random.Random(4)
    alphabet = "abcAB09:/@._-[]%sha256ffffffffé "
    parsed = 0
    for _ in range(20000):
        text = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 30)))
        if rnd.random() < 0.1:
            text = rnd.choice(["oci:", "docker://", "docker-archive:", "oci-archive:"]) + text
        try:
            ref = parse_reference(text)
        except InvalidReference:
            continue
        parsed += 1
        assert parse_reference(str(ref)) == ref, text
        assert ref.transport != "docker" or (ref.registry and ref.repository), text
    assert parsed > 1000
