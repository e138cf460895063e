"""Texture paths from model files resolve inside the model folder only, and unsafe ones are never opened."""

from __future__ import annotations

import builtins
import io
import os
import unicodedata
from pathlib import Path

import pytest

from factory.sources.pmx import read_pmx
from factory.sources.textures import TextureResolver, resolve_textures
from factory.synthetic.character import TEXTURE_PATH, build_character, write_character


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    """tmp/outside/secret.png beside tmp/model/ holding Tex/Face.PNG, tex2/a.png, a folder and a link."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.png").write_bytes(b"secret")
    model = tmp_path / "model"
    (model / "Tex").mkdir(parents=True)
    (model / "Tex" / "Face.PNG").write_bytes(b"png")
    (model / "tex2").mkdir()
    (model / "tex2" / "a.png").write_bytes(b"png")
    (model / "folder.png").mkdir()
    (model / unicodedata.normalize("NFD", "ボタン.png")).write_bytes(b"png")
    os.symlink(outside / "secret.png", model / "link.png")
    os.symlink(outside, model / "linkdir")
    return model, outside


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("Tex\\Face.PNG", "Tex/Face.PNG"),
        ("tex\\face.png", "Tex/Face.PNG"),  # Windows paths ignore case
        ("TEX/FACE.png", "Tex/Face.PNG"),
        (".\\tex\\.\\face.png", "Tex/Face.PNG"),
        ("tex2\\\\a.png", "tex2/a.png"),
        ("ボタン.png", unicodedata.normalize("NFD", "ボタン.png")),  # macOS stores decomposed names
    ],
)
def test_resolves_inside_folder(layout, raw, expected):
    model, _ = layout
    result = TextureResolver(model)(raw)
    assert result.ok and result.reason is None
    assert result.path == (model / expected).resolve()


@pytest.mark.parametrize(
    "raw, reason",
    [
        ("..\\..\\etc\\passwd", "'..'"),
        ("../outside/secret.png", "'..'"),
        ("tex\\..\\..\\outside\\secret.png", "'..'"),
        ("C:\\Windows\\win.ini", "drive letter"),
        ("c:secret.png", "drive letter"),
        ("\\\\server\\share\\x.png", "UNC"),
        ("//server/share/x.png", "UNC"),
        ("/etc/passwd", "absolute"),
        ("\\etc\\passwd", "absolute"),
        ("file:///etc/passwd", "colon"),
        ("tex\\face.png:stream", "colon"),
        ("tex\\face\x00.png", "NUL"),
        ("link.png", "symbolic link"),
        ("linkdir\\secret.png", "symbolic link"),
    ],
)
def test_rejects_paths_leaving_the_folder(layout, raw, reason):
    model, _ = layout
    result = TextureResolver(model)(raw)
    assert result.path is None
    assert result.reason.startswith("rejected") and reason in result.reason


@pytest.mark.parametrize(
    "raw, reason",
    [("tex\\missing.png", "no 'missing.png'"), ("nope\\a.png", "no 'nope'"), ("folder.png", "not a regular file"),
     ("", "empty"), ("   ", "empty")],
)
def test_missing_textures_have_a_reason(layout, raw, reason):
    model, _ = layout
    result = TextureResolver(model)(raw)
    assert result.path is None and result.reason.startswith("missing") and reason in result.reason


def test_escaping_paths_are_never_opened_or_listed(layout, monkeypatch):
    """Record every file system call the resolver makes: none reaches outside the model folder."""
    model, outside = layout
    calls: list[str] = []

    def spy(name, real):
        def wrapper(path, *args, **kwargs):
            calls.append(f"{name}:{os.fspath(path) if not isinstance(path, int) else path}")
            return real(path, *args, **kwargs)
        return wrapper

    for module, name in ((builtins, "open"), (io, "open"), (os, "open"), (os, "listdir"), (os, "scandir"),
                         (os, "stat"), (os, "lstat")):
        monkeypatch.setattr(module, name, spy(name, getattr(module, name)))
    resolver = TextureResolver(model)
    for raw in ("..\\..\\etc\\passwd", "../outside/secret.png", "tex\\..\\..\\outside\\secret.png",
                "C:\\..\\etc\\passwd", "/etc/passwd", "\\\\host\\etc\\passwd"):
        assert resolver(raw).path is None
    assert resolver("link.png").path is None
    monkeypatch.undo()
    assert not any("passwd" in c for c in calls), calls
    assert not any(c.startswith("open") for c in calls), calls
    # after the folder itself is located, every call stays inside it; nothing under outside/ is touched
    root = str(model.resolve())
    assert not any(str(outside) in c for c in calls), calls
    assert all(c.split(":", 1)[1].startswith(root) for c in calls if c.startswith(("listdir", "scandir"))), calls


def test_resolver_output_is_never_outside_the_folder(layout):
    model, _ = layout
    resolver = TextureResolver(model)
    root = model.resolve()
    tries = ["..", "../..", "tex/../..", "Tex/Face.PNG", "link.png", "linkdir", "linkdir/secret.png", "tex2/a.png"]
    for raw in tries + [t.replace("/", "\\") for t in tries]:
        result = resolver(raw)
        if result.ok:
            assert root in result.path.parents


def test_synthetic_character_texture_resolves(tmp_path):
    character = build_character()
    pmx_path = write_character(character, tmp_path / "m")
    model = read_pmx(pmx_path)
    assert model.textures == (TEXTURE_PATH,)
    (result,) = resolve_textures(model.textures, pmx_path.parent)
    assert result.ok and result.path == (tmp_path / "m" / "tex" / "face.png").resolve()
