"""The guards of cotforge.safety, one by one: names, atomic writes, the directory lock, redaction, text, disk full."""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from cotforge.safety.atomic import atomic_folder, atomic_path, atomic_write_text
from cotforge.safety.diskfull import DiskFull, as_disk_full, writing
from cotforge.safety.lock import LOCK_FILE, DirectoryInUse, directory_lock
from cotforge.safety.names import MAX_NAME_LENGTH, UnsafeName, safe_name
from cotforge.safety.redact import redact_text, redact_url, shown_value
from cotforge.safety.text import storable, unstorable

HOSTILE_NAMES = ["..", "../../outside/x", "/abs/path", "a/b", "a\\b", "nul\x00byte", "x" * (MAX_NAME_LENGTH + 1), ""]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_unsafe_names_are_refused_naming_the_field(name: str) -> None:
    with pytest.raises(UnsafeName, match=r"^teacher: "):
        safe_name(name, "teacher")


@pytest.mark.parametrize("name", ["gpt-4o-g5-cot", "qwen2.5-7b-instruct", "gsm8k", "Llama-3_70B+x"])
def test_plain_names_pass_unchanged(name: str) -> None:
    assert safe_name(name, "subset") == name


def test_atomic_path_keeps_the_old_file_when_the_writer_fails(tmp_path: Path) -> None:
    target = tmp_path / "state.pt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as partial:
        partial.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["state.pt"]
    atomic_write_text(target, "new")
    assert target.read_text() == "new"


def test_atomic_folder_swaps_in_only_when_complete_and_keeps_the_lock(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "old.txt").write_text("old")
    (folder / LOCK_FILE).write_text("held")
    with pytest.raises(RuntimeError), atomic_folder(folder, keep=(LOCK_FILE,)) as partial:
        (partial / "new.txt").write_text("half")
        raise RuntimeError("killed")
    assert sorted(p.name for p in folder.iterdir()) == [LOCK_FILE, "old.txt"]
    with atomic_folder(folder, keep=(LOCK_FILE,)) as partial:
        (partial / "new.txt").write_text("new")
    assert sorted(p.name for p in folder.iterdir()) == [LOCK_FILE, "new.txt"]
    assert (folder / LOCK_FILE).read_text() == "held"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary folder left


def test_a_second_holder_is_refused_naming_the_first(tmp_path: Path) -> None:
    folder = tmp_path / "build"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from cotforge.safety.lock import directory_lock\n"
            f"with directory_lock(Path({str(folder)!r}), 'build'):\n print('held', flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with (
            pytest.raises(DirectoryInUse, match=rf"in use by process {holder.pid} \(build\)"),
            directory_lock(folder, "export"),
        ):
            pass
    finally:
        holder.kill()
        holder.wait()
    with directory_lock(folder, "export"):  # the OS released the killed holder's lock
        assert f"process {os.getpid()} (export)" in (folder / LOCK_FILE).read_text()


def test_a_missing_folder_is_not_made_unless_asked(tmp_path: Path) -> None:
    with directory_lock(tmp_path / "absent", "export", create=False):
        pass
    assert not (tmp_path / "absent").exists()


@pytest.mark.parametrize(
    ("url", "kept", "hidden"),
    [
        ("http://user:sk-abcdef123456@host:8000/v1", "http://***@host:8000/v1", "sk-abcdef123456"),
        ("https://host/sk-abcdef123456/v1", "https://host/***/v1", "sk-abcdef123456"),
        ("https://host/v1?api_key=plain&x=1", "https://host/v1?api_key=***&x=1", "plain"),
        ("https://host/v1?t=A1b2C3d4E5f6G7h8I9j0K1l2", "https://host/v1?t=***", "A1b2C3d4E5f6G7h8I9j0K1l2"),
    ],
)
def test_urls_are_redacted(url: str, kept: str, hidden: str) -> None:
    assert redact_url(url) == kept
    assert hidden not in redact_text(f"cannot connect to {url}: refused")


def test_plain_urls_are_left_alone() -> None:
    assert redact_url("http://127.0.0.1:8000/v1") == "http://127.0.0.1:8000/v1"


def test_validation_errors_do_not_show_secret_looking_values() -> None:
    assert shown_value("teachers[0].api_key", "plain-secret") is None
    assert shown_value("teachers[0].label", "sk-abcdef123456") is None
    assert shown_value("teachers[0].base_url", "http://u:p@h/v1") == "'http://***@h/v1'"
    assert shown_value("granularities[0]", 9) == "9"


def test_unstorable_text_is_named_and_replaced() -> None:
    text = "good \udc80 and \x00 end"
    assert "1 lone surrogate(s) and 1 NUL(s) (first at character 5)" in (unstorable(text) or "")
    assert unstorable(storable(text)) is None and storable(text).encode("utf-8")
    assert unstorable("plain text") is None


def test_disk_full_is_recognised_however_it_is_reported(tmp_path: Path) -> None:
    target = tmp_path / "subsets" / "x.parquet"
    for error in (
        OSError(errno.ENOSPC, "No space left on device"),
        sqlite3.OperationalError("database or disk is full"),
        RuntimeError(
            "[enforce fail at inline_container.cc:603] . PytorchStreamWriter failed writing file: "
            "No space left on device"
        ),
    ):
        with pytest.raises(DiskFull) as caught, writing(target):
            raise error
        message = str(caught.value)
        assert message.startswith("no space left on /") and f"while writing {target}" in message
        assert "free space and run the same command: nothing stored is lost" in message
    assert as_disk_full(ValueError("something else")) is None
