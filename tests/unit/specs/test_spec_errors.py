"""Every kind of envctl.yaml error, each asserted with its exact line:column and key path."""

import pytest

from specs.errors import SpecError, SpecErrors
from specs.load import MAX_NODES, load_spec, parse_spec, read_document

HEAD = "version: 1\nimage: debian\n"


def errors(text: str | bytes) -> list[tuple[int, int, str, str]]:
    """(line, col, path, detail) of every error parse_spec reports for ``text``."""
    with pytest.raises(SpecError) as e:
        parse_spec(text, "envctl.yaml")
    return [(x.line, x.col, x.path, x.detail) for x in getattr(e.value, "errors", [e.value])]


def one(text) -> tuple[int, int, str, str]:
    errs = errors(text)
    assert len(errs) == 1, errs
    return errs[0]


def test_rendering_matches_the_issue_example():
    e = errors(HEAD + "steps:\n  - run: make\n  - run:\n      a: b\n")
    assert e == [(6, 7, "steps[1].run", "expected a string (or a list of strings), got a mapping")]
    with pytest.raises(SpecErrors) as err:
        parse_spec(HEAD + "steps:\n  - run: make\n  - run:\n      a: b\n", "envctl.yaml")
    assert str(err.value) == "envctl.yaml:6:7: steps[1].run: expected a string (or a list of strings), got a mapping"
    assert err.value.exit_code == 2


def test_boolean_where_a_command_belongs():
    assert one(HEAD + "steps:\n  - run: true\n") == (
        4, 10, "steps[0].run", 'expected a string (or a list of strings), got a boolean (true); quote it: "true"')


def test_yaml_syntax_error():
    line, col, path, msg = one("version: 1\nimage: [debian\n")
    assert (line, col, path) == (3, 1, "")
    assert msg.startswith("invalid YAML: expected ',' or ']'") and "at line 2" in msg


def test_tab_indentation():
    assert one(HEAD + "\tsteps: []\n")[:2] == (3, 1)


def test_several_documents():
    line, col, _, msg = one(HEAD + "---\nversion: 1\n")
    assert (line, col) == (3, 1) and "single document" in msg


def test_duplicate_key_top_level_and_nested():
    assert one("version: 1\nimage: a\nimage: b\n") == (3, 1, "image", "duplicate key 'image' (first set at line 2)")
    assert one(HEAD + "env:\n  A: '1'\n  B: '2'\n  A: '3'\n") == (
        6, 3, "env.A", "duplicate key 'A' (first set at line 4)")


def test_unknown_keys_with_suggestion_all_reported():
    assert errors("version: 1\nimage: debian\nimgae: x\nresources:\n  memroy: 1G\n") == [
        (3, 1, "imgae", "unknown key 'imgae' (did you mean 'image'?)"),
        (5, 3, "resources.memroy", "unknown key 'memroy' (did you mean 'memory'?)"),
    ]


def test_unknown_key_without_close_match_lists_allowed():
    with pytest.raises(SpecError) as e:
        parse_spec(HEAD + "zzz: 1\n", "envctl.yaml")
    assert (e.value.line, e.value.col, e.value.detail) == (3, 1, "unknown key 'zzz'")
    assert e.value.hint.startswith("allowed here: version, image")


def test_unknown_step_kind_suggests():
    assert one(HEAD + "steps:\n  - rn: make\n") == (4, 5, "steps[0].rn", "unknown key 'rn' (did you mean 'run'?)")


def test_step_with_two_kinds():
    assert one(HEAD + "steps:\n  - run: a\n    copy: a /b\n") == (
        4, 5, "steps[0]", "a step has exactly one of run, copy, env, workdir, user; this one has run and copy")


def test_missing_version():
    with pytest.raises(SpecError) as e:
        parse_spec("image: debian\n", "envctl.yaml")
    assert (e.value.line, e.value.col, e.value.detail) == (1, 1, "missing required key 'version'")
    assert "version: 1" in e.value.hint


def test_version_too_new_is_the_only_error():
    assert errors("version: 2\nimage: debian\nfuture_key: 1\n") == [
        (1, 10, "version", "version 2 is newer than this envctl understands (newest: 1)")]


def test_version_not_an_integer():
    assert one("version: '1'\nimage: debian\n") == (1, 10, "version", "expected an integer, got a string ('1')")


@pytest.mark.parametrize("text", ["", "\n\n", "# just a comment\n", "---\n"])
def test_empty_file(text):
    assert one(text) == (1, 1, "", "the file is empty")


@pytest.mark.parametrize("text,got", [("- a\n- b\n", "a list"), ("just text\n", "a string ('just text')")])
def test_not_a_mapping(text, got):
    assert one(text) == (1, 1, "", f"expected a mapping of settings (key: value lines) at the top level, got {got}")


def test_yaml11_env_values_quote_it():
    text = HEAD + "env:\n  A: yes\n  B: on\n  C: 0755\n  D: 8000\n  E: 1.50\n  F: 12:30\n  G: '0755'\n"
    assert errors(text) == [
        (4, 6, "env.A", 'expected a string, got a boolean: YAML 1.1 reads `yes` as true; quote it: "yes"'),
        (5, 6, "env.B", 'expected a string, got a boolean: YAML 1.1 reads `on` as true; quote it: "on"'),
        (6, 6, "env.C", 'YAML 1.1 reads `0755` as the number 493, not the text 0755; quote it: "0755"'),
        (8, 6, "env.E", 'YAML 1.1 reads `1.50` as the number 1.5, not the text 1.50; quote it: "1.50"'),
        (9, 6, "env.F", 'YAML 1.1 reads `12:30` as the number 750, not the text 12:30; quote it: "12:30"'),
    ]
    spec = parse_spec(HEAD + "env:\n  D: 8000\n  G: '0755'\n")
    assert spec.env_dict() == {"D": "8000", "G": "0755"}  # plain decimals keep their text


def test_yaml11_in_step_env_and_copy_mode():
    text = HEAD + "steps:\n  - env: {DEBUG: off}\n  - copy: {src: a, dest: /b, mode: 0644}\n"
    assert errors(text) == [
        (4, 18, "steps[0].env.DEBUG", 'expected a string, got a boolean: YAML 1.1 reads `off` as false; quote it: "off"'),
        (5, 36, "steps[1].copy.mode",
         'expected octal permission bits such as "0644", got a number: YAML 1.1 reads `0644` as 420; quote it: "0644"'),
    ]


@pytest.mark.parametrize("value,expected", [
    ("2GiB", 2 << 30), ("512M", 512 << 20), ("1.5G", 3 << 29), ("1g", 1 << 30), ("64mb", 64 << 20),
    ("1T", 1 << 40), ("7340032", 7340032), ("'7340032b'", 7340032),
])
def test_sizes(value, expected):
    assert parse_spec(HEAD + f"resources: {{memory: {value}}}\n").resources.memory == expected


def test_size_errors_and_ranges():
    text = HEAD + "resources:\n  memory: 3Q\n"
    assert one(text) == (4, 11, "resources.memory", "expected a size such as 512M, 2GiB or 1.5G, got '3Q'")
    assert one(HEAD + "resources: {memory: 1K}\n") == (
        3, 21, "resources.memory", "1K (1024 bytes) is out of range: between 6MiB and 1PiB")
    assert one(HEAD + "resources: {memory: 0.5B}\n") == (
        3, 21, "resources.memory", "'0.5B' is not a whole number of bytes")
    assert one(HEAD + "resources: {memory: 2048P}\n")[:3] == (3, 21, "resources.memory")


def test_cpus_and_pids_ranges():
    assert errors(HEAD + "resources:\n  cpus: 0\n  pids: 0\n") == [
        (4, 9, "resources.cpus", "0 is too small (minimum 0.01)"),
        (5, 9, "resources.pids", "0 is too small (minimum 1)"),
    ]
    assert one(HEAD + "resources: {cpus: 2000}\n") == (3, 19, "resources.cpus", "2000 is too large (maximum 1024)")
    assert one(HEAD + "resources: {cpus: two}\n") == (3, 19, "resources.cpus", "expected a number, got a string ('two')")
    assert parse_spec(HEAD + "resources: {cpus: 1.5, pids: 100}\n").resources.cpus == 1.5


def test_alias_bomb_bounded():
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for i, name in enumerate("bcdefg"):
        prev = "abcdefg"[i]
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    line, col, _, msg = one("\n".join(lines) + "\n")
    assert msg == f"document expands to more than {MAX_NODES} values (alias/anchor bomb?)"
    assert (line, col) == (1, 4)  # the anchored node being expanded


# the size bound names aliases only when the document uses them; a recursive alias's key path
# is shortened (not 64 levels long)

def test_large_plain_spec_does_not_blame_aliases():
    text = "version: 1\nimage: busybox\nenv:\n" + "".join(f"  K{i}: v\n" for i in range(MAX_NODES + 5))
    with pytest.raises(SpecError) as e:
        read_document(text, "envctl.yaml")
    assert f"document has more than {MAX_NODES} values" in e.value.message
    assert "alias" not in e.value.message + (e.value.hint or "")


def test_alias_bomb_is_named_as_such():
    text = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcde", "bcdef"))
    with pytest.raises(SpecError) as e:
        read_document(text, "envctl.yaml")
    assert "alias/anchor bomb" in e.value.message


def test_recursive_alias_path_is_short():
    with pytest.raises(SpecError) as e:
        read_document("a: &x [*x]\n", "envctl.yaml")
    assert "alias" in e.value.message and len(e.value.message) < 200, e.value.message
    assert "a[0][0][0]... (" in e.value.path


def test_aliases_and_merge_keys_within_bounds():
    spec = parse_spec(HEAD + "x-base: &b {command: x, restart: always}\nservices:\n  web:\n    <<: *b\n    command: y\n")
    (web,) = spec.services
    assert (web.command, web.restart) == ("y", "always")


def test_non_string_key_and_unknown_tag():
    assert one(HEAD + "? [a]\n: b\n")[:2] == (3, 3)
    line, col, _, msg = one("version: 1\nimage: !!python/object:os.system x\n")
    assert (line, col) == (2, 8) and "could not determine a constructor" in msg


def test_invalid_utf8():
    assert one(b"version: 1\nimage: deb\xffian\n") == (2, 11, "", "invalid UTF-8 (byte 0xff)")


def test_wrong_types_enums_and_paths():
    text = HEAD + ("network: bridge\nworkdir: app\nplatforms: [linux]\nservices:\n  web:\n    command: x\n"
                   "    restart: no\n")
    assert errors(text) == [
        (3, 10, "network", "expected one of host, none, got a string ('bridge')"),
        (4, 10, "workdir", "expected an absolute path (starting with /), got 'app'"),
        (5, 13, "platforms[0]", "expected os/arch[/variant] such as linux/amd64, got 'linux'"),
        (9, 14, "services.web.restart",
         "expected one of never, on-failure, always, got a boolean: YAML 1.1 reads `no` as false"),
    ]


def test_image_reference_error_located():
    assert one("version: 1\nimage: Debian:12\n") == (
        2, 8, "image", "invalid image reference 'Debian:12': repository name (Debian) must be lowercase")


def test_copy_outside_project_and_bad_forms():
    assert errors(HEAD + "steps:\n  - copy: ../secret /x\n  - copy: {src: /etc/passwd, dest: /x}\n  - copy: a\n") == [
        (4, 11, "steps[0].copy", "copy source '../secret' is outside the project"),
        (5, 17, "steps[1].copy.src", "copy source '/etc/passwd' is outside the project"),
        (6, 11, "steps[2].copy",
         "expected 'SRC DEST' with an absolute DEST, or a mapping with src and dest, got 'a'"),
    ]


def test_services_names_dependencies_cycles_ready():
    text = HEAD + ("services:\n  Web: {command: x}\n  a: {command: x, depends_on: [b, zz]}\n"
                   "  b: {command: x, depends_on: [a]}\n  c:\n    command: x\n    ready: {http: /health}\n")
    assert errors(text) == [
        (4, 3, "services.Web",
         "invalid name 'Web': service names use lowercase letters, digits, '-' and '_' (at most 63)"),
        (5, 31, "services.a.depends_on", "dependency cycle: a -> b -> a"),
        (5, 35, "services.a.depends_on[1]", "no service named 'zz'"),
        (9, 19, "services.c.ready.http", "the path /health needs a port"),
    ]


def test_platform_duplicates_after_normalisation_and_caps():
    assert errors(HEAD + "platforms: [linux/amd64, linux/x86_64]\ncap_add: [NET_ADMN]\n") == [
        (3, 26, "platforms[1]", "platform linux/amd64 is listed twice (as linux/x86_64)"),
        (4, 11, "cap_add[0]", "unknown capability 'NET_ADMN' (did you mean 'NET_ADMIN'?)"),
    ]


def test_durations():
    assert one(HEAD + "services:\n  w:\n    command: x\n    ready: {port: 1, timeout: 5 s}\n") == (
        6, 31, "services.w.ready.timeout", "expected a duration such as 250ms, 2s or 1m, got '5 s'")
    assert one(HEAD + "services:\n  w:\n    command: x\n    ready: {port: 1, timeout: 0s}\n") == (
        6, 31, "services.w.ready.timeout", "must be longer than 0")
    spec = parse_spec(HEAD + "services:\n  w:\n    command: x\n    ready: {port: 1, timeout: 1.5}\n"
                      "    watch: {paths: [a], debounce: 250ms}\n")
    assert spec.services[0].ready.timeout_ms == 1500 and spec.services[0].watch.debounce_ms == 250


def test_errors_are_sorted_and_all_reported():
    text = "version: 1\nimage: debian\nzzz: 1\nenv: {A: yes}\nnetwork: x\nresources: {cpus: 0}\n"
    assert [e[:2] for e in errors(text)] == [(3, 1), (4, 10), (5, 10), (6, 19)]


def test_missing_file(tmp_path):
    with pytest.raises(SpecError) as e:
        load_spec(tmp_path / "nope.yaml", display="nope.yaml")
    assert str(e.value) == "nope.yaml: cannot read the spec file: No such file or directory"


def test_null_env_value_says_how_to_write_empty():
    assert errors(HEAD + "env:\n  E: ~\n  F:\n") == [
        (4, 6, "env.E", 'expected a string, got null (~); write "" for an empty string'),
        (5, 5, "env.F", 'expected a string, got nothing (null); write "" for an empty string'),
    ]


def test_integral_float_version_is_checked_too():
    assert one("version: 2.0\nimage: debian\n")[3] == "version 2.0 is newer than this envctl understands (newest: 1)"
    assert parse_spec("version: 1.0\nimage: debian\nresources: {pids: 10.0}\n").resources.pids == 10


def test_mapping_forms_missing_keys_and_typos_inside_branches():
    text = HEAD + ("steps:\n  - run: x\n    reproducable: false\n  - copy: {src: a}\n  - {}\n"
                   "mounts: [{source: x}]\nservices:\n  web:\n    command: x\n    ready: {}\n"
                   "  w2: {command: x, ready: {timeout: 5s}}\n")
    assert errors(text) == [
        (5, 5, "steps[0].reproducable", "unknown key 'reproducable' (did you mean 'reproducible'?)"),
        (6, 11, "steps[1].copy", "missing required key 'dest'"),
        (7, 5, "steps[2]", "a step needs one of run, copy, env, workdir, user"),
        (8, 10, "mounts[0]", "missing required key 'target'"),
        (12, 12, "services.web.ready", "needs a check: port, http or command"),
        (13, 27, "services.w2.ready", "needs a check: port, http or command"),
    ]


def test_quote_advice_only_when_the_quoted_text_would_be_valid():
    assert errors(HEAD + "workdir: 5\nsteps:\n  - apt-get install x\n") == [
        (3, 10, "workdir", "expected an absolute path (starting with /), got a number (5)"),
        (5, 5, "steps[0]", "expected a step such as `run: CMD` or `copy: SRC DEST`, got a string ('apt-get install x')"),
    ]
    assert one("version: 1\nimage: 2024-01-01\n") == (
        2, 8, "image", 'expected a string, got a date (2024-01-01); quote it: "2024-01-01"')


# an env value over the kernel's 128 KiB MAX_ARG_STRLEN (every command would fail with "argument
# list too long") is refused at validate, located at its key

def _spec(n: int, where: str = "env") -> str:
    big = "x" * n
    if where == "env":
        return f"version: 1\nimage: busybox\nenv:\n  SMALL: a\n  BIG: {big}\n"
    return f"version: 1\nimage: busybox\nservices:\n  web:\n    command: x\n    env:\n      BIG: {big}\n"


@pytest.mark.parametrize("where", ["env", "service"])
def test_env_value_over_the_kernel_limit_is_refused(where):
    with pytest.raises(SpecError) as e:
        parse_spec(_spec(500_000, where))
    text = str(e.value)
    assert "BIG=... is 500005 bytes" in text and "MAX_ARG_STRLEN" in text
    assert ":5:" in text or ":7:" in text   # file:line of the key


def test_env_value_at_the_kernel_limit_is_accepted():
    spec = parse_spec(_spec(131072 - len("BIG=") - 1))
    assert len(spec.env_dict()["BIG"]) == 131067
    with pytest.raises(SpecError):
        parse_spec(_spec(131072 - len("BIG=")))
