# Sourced by bench scripts (cwd = the repository): install envctl as users get it.
# install_envctl OUT: a non-editable `pip install --no-deps .` into OUT/venv (a fresh venv of
# .venv's base python), dependencies borrowed from .venv through a .pth file; sets ENVCTL to
# OUT/venv/bin/envctl. OUT must exist and be empty of venv/ and src/.
install_envctl() {
    local out=$1 base deps site
    base=$(.venv/bin/python -c 'import sys; print(getattr(sys, "_base_executable", sys.executable))')
    "$base" -m venv "$out/venv"
    deps=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    site=$("$out/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    echo "$deps" > "$site/zz_envctl_bench_deps.pth"
    mkdir "$out/src"
    cp -r pyproject.toml README.md envctl specs engine runtime templates "$out/src/"
    "$out/venv/bin/python" -m pip install -q --no-deps "$out/src" >/dev/null
    ENVCTL=$out/venv/bin/envctl
}
