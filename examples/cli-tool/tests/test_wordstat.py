import subprocess
import sys

from wordstat import count


def test_counts():
    s = count("the cat saw the dog\nthe end\n")
    assert (s.lines, s.words, s.chars) == (2, 7, 28)
    assert s.top[0] == ("the", 3)


def test_ties_are_alphabetical_and_case_folded():
    assert count("b a B A c", top=2).top == [("a", 2), ("b", 2)]


def test_apostrophes_and_digits():
    assert count("don't stop 42 times").words == 3


def test_empty_and_unterminated():
    assert count("").lines == 0
    assert count("one line").lines == 1


def test_cli_reads_files(tmp_path):
    f = tmp_path / "t.txt"
    f.write_text("hello hello world\n")
    out = subprocess.run([sys.executable, "-m", "wordstat", "--top", "1", str(f)],
                         capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["lines 1  words 3  chars 18", "     2 hello"]


def test_cli_missing_file():
    r = subprocess.run([sys.executable, "-m", "wordstat", "/nonexistent"], capture_output=True, text=True)
    assert r.returncode == 1 and "No such file" in r.stderr
