"""engine.store.userns as an unprivileged user: files of subordinate ids (what rootless steps leave)
are created, read and removed inside a user namespace mapped from /etc/subuid."""

import subprocess
import textwrap

import pytest

pytestmark = pytest.mark.rootless

REPO = str(__import__("pathlib").Path(__file__).resolve().parents[2])


def test_subuid_files_removed_and_read(rootless_user):
    d = rootless_user.tmpdir()
    try:
        code = textwrap.dedent(f"""
            import os, sys
            sys.path.insert(0, {REPO!r})
            from engine.store.userns import call_in_userns, own_mapping, remove_tree_rootless
            from engine.layers.writer import write_layer_file
            m = own_mapping()
            assert m and m[0][0] == (0, os.getuid(), 1), m
            def mk(p):
                os.makedirs(p + "/a/b"); open(p + "/a/b/f", "w").write("x")
                os.chown(p + "/a/b/f", 33, 33); os.chown(p + "/a/b", 33, 33); os.chmod(p + "/a/b", 0o700)
                os.chown(p + "/a", 33, 33); os.chmod(p + "/a", 0o500)
            call_in_userns(mk, ({str(d)!r} + "/t",), m[0], m[1], "make")
            try:
                os.listdir({str(d)!r} + "/t/a/b")
                raise SystemExit("expected EACCES outside the namespace")
            except PermissionError:
                pass
            res, path = call_in_userns(write_layer_file, ({str(d)!r} + "/t", {str(d)!r}), m[0], m[1], "write")
            import gzip, tarfile, io
            with tarfile.open(fileobj=io.BytesIO(gzip.decompress(open(path, "rb").read()))) as t:
                owners = {{x.name: (x.uid, x.gid) for x in t}}
            assert owners == {{"a": (33, 33), "a/b": (33, 33), "a/b/f": (33, 33)}}, owners
            remove_tree_rootless({str(d)!r} + "/t")
            assert not os.path.exists({str(d)!r} + "/t")
            print("ok")
        """)
        r = rootless_user.run([rootless_user.python, "-c", code])
        assert r.returncode == 0 and r.stdout.strip() == "ok", r.stdout + r.stderr
    finally:
        subprocess.run(["rm", "-rf", str(d)], check=False)
