"""Model archives as untrusted input: good ones unpack, bad ones fail cleanly
and nothing is written outside the destination folder."""

from __future__ import annotations

import os
import stat
import struct
import zipfile
from pathlib import Path

import pytest

from factory.sources.archives import ArchiveError, ArchiveLimits, extract_archive, model_id


def _zip(path: Path, entries: dict[str, bytes], utf8: bool = True) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(zipfile.ZipInfo(name), data)
    return path


def _shift_jis_zip(path: Path, name: str, data: bytes) -> Path:
    """A zip whose entry name is raw Shift-JIS bytes with no UTF-8 flag, as Japanese tools write."""
    placeholder = "x" * len(name.encode("cp932"))
    _zip(path, {placeholder: data})
    raw = path.read_bytes().replace(placeholder.encode(), name.encode("cp932"))
    path.write_bytes(raw)
    return path


def _tree(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def test_normal_archive_unpacks_and_lists_models(tmp_path):
    arc = _zip(tmp_path / "m.zip", {"Miku/miku.pmx": b"PMX ", "Miku/tex/face.png": b"png", "readme.txt": b"hi"})
    models = extract_archive(arc, tmp_path / "out")
    assert [m.relative_to(tmp_path / "out").as_posix() for m in models] == ["Miku/miku.pmx"]
    assert (tmp_path / "out/Miku/tex/face.png").read_bytes() == b"png"


def test_shift_jis_names_are_decoded(tmp_path):
    arc = _shift_jis_zip(tmp_path / "sjis.zip", "初音ミク/ミク.pmx", b"PMX ")
    models = extract_archive(arc, tmp_path / "out")
    assert [m.name for m in models] == ["ミク.pmx"]
    assert (tmp_path / "out" / "初音ミク" / "ミク.pmx").is_file()


@pytest.mark.parametrize(
    "name, message",
    [("../../evil.pmx", "escapes"), ("a/../../evil.pmx", "escapes"), ("/etc/evil.pmx", "absolute"),
     ("C:\\Windows\\evil.pmx", "absolute"), ("..\\..\\evil.pmx", "escapes")],
)
def test_escaping_names_are_refused_and_nothing_is_written(tmp_path, name, message):
    arc = _zip(tmp_path / "bad.zip", {"ok/model.pmx": b"PMX ", name: b"x"})
    dest = tmp_path / "sandbox" / "out"
    with pytest.raises(ArchiveError, match=message):
        extract_archive(arc, dest)
    assert not dest.exists() or _tree(dest) == set()  # checked before anything is written
    assert _tree(tmp_path / "sandbox") <= {"out"}
    assert not (tmp_path / "evil.pmx").exists()


def test_symlink_entries_are_refused(tmp_path):
    arc = tmp_path / "link.zip"
    with zipfile.ZipFile(arc, "w") as zf:
        info = zipfile.ZipInfo("model/tex")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc")
        zf.writestr("model/m.pmx", b"PMX ")
    with pytest.raises(ArchiveError, match="symlink"):
        extract_archive(arc, tmp_path / "out")


def test_too_many_files_is_refused(tmp_path):
    arc = _zip(tmp_path / "many.zip", {f"f{i}.txt": b"" for i in range(10_000)})
    with pytest.raises(ArchiveError, match="10000 entries"):
        extract_archive(arc, tmp_path / "out")


def test_entries_claiming_100_gb_are_refused(tmp_path):
    arc = _zip(tmp_path / "huge.zip", {f"part{i}.bin": b"0" * 100 for i in range(25)})
    data = bytearray(arc.read_bytes())
    pos = 0
    while (pos := data.find(b"PK\x01\x02", pos)) != -1:  # central directory: claim 4 GiB each
        struct.pack_into("<I", data, pos + 24, 0xFFFFFFFE)
        pos += 4
    arc.write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match="claims|claim"):
        extract_archive(arc, tmp_path / "out")


def test_a_bomb_that_lies_about_its_size_stops_while_writing(tmp_path):
    arc = _zip(tmp_path / "bomb.zip", {"a.bin": b"\0" * (4 << 20)})
    data = bytearray(arc.read_bytes())
    pos = data.find(b"PK\x01\x02")
    struct.pack_into("<I", data, pos + 24, 1000)  # claims 1000 bytes, holds 4 MiB
    arc.write_bytes(bytes(data))
    with pytest.raises(ArchiveError):
        extract_archive(arc, tmp_path / "out", ArchiveLimits(max_file_bytes=1 << 20, max_ratio=1e9))
    assert not (tmp_path / "out" / "a.bin").exists() or os.path.getsize(tmp_path / "out" / "a.bin") <= 1 << 20


def test_not_a_zip_is_one_clear_error(tmp_path):
    (tmp_path / "x.zip").write_bytes(b"not a zip at all")
    with pytest.raises(ArchiveError, match="unreadable archive x.zip"):
        extract_archive(tmp_path / "x.zip", tmp_path / "out")


def test_model_ids_are_stable_and_distinct():
    a = model_id("s3://b/models/pack.zip", "Miku/miku.pmx")
    assert a == model_id("s3://b/models/pack.zip", "Miku/miku.pmx")
    assert a != model_id("s3://b/models/pack.zip", "Miku2/miku.pmx")
    assert "." not in a and a.startswith("miku_")
