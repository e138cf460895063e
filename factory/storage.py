"""Object storage: one URL -> an fsspec filesystem and a path inside it.

Plain paths and ``file://`` URLs go to the local disk; ``s3://`` goes through
s3fs. S3 endpoint and credentials come from the standard AWS environment
variables (``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_S3``, ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_DEFAULT_REGION``) or an
explicit :class:`StorageConfig`.

Writes are atomic: a reader never sees a half-written object. Locally a file is
written under a temporary name and renamed; on S3 an object only exists once its
PUT (or multipart upload) completes.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import uuid
from dataclasses import dataclass, field
from typing import IO, Callable, Iterator

import fsspec
from fsspec.implementations.local import LocalFileSystem


class StorageError(Exception):
    """A storage URL cannot be used; the message is one line for the user."""


@dataclass(frozen=True)
class StorageConfig:
    """S3 settings that override the AWS environment variables when set."""

    endpoint_url: str | None = None
    key: str | None = None
    secret: str | None = None
    region: str | None = None
    connect_timeout_s: float = 5.0
    max_attempts: int = 3
    extra: dict = field(default_factory=dict)


def _local_fs(config: StorageConfig) -> fsspec.AbstractFileSystem:
    return LocalFileSystem(auto_mkdir=True)


def _s3_fs(config: StorageConfig) -> fsspec.AbstractFileSystem:
    try:
        import s3fs  # noqa: F401  (imported for its registration and a clear error)
    except ImportError as exc:  # pragma: no cover - s3fs is a hard dependency
        raise StorageError("s3:// needs the s3fs package: pip install s3fs") from exc
    endpoint = (
        config.endpoint_url
        or os.environ.get("AWS_ENDPOINT_URL_S3")
        or os.environ.get("AWS_ENDPOINT_URL")
    )
    client_kwargs: dict = {}
    if endpoint:
        client_kwargs["endpoint_url"] = endpoint
    region = config.region or os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION")
    if region:
        client_kwargs["region_name"] = region
    options: dict = {
        "client_kwargs": client_kwargs,
        # Short timeouts and few retries: an unreachable endpoint must fail in
        # seconds with a clear message, not hang for minutes.
        "config_kwargs": {
            "connect_timeout": config.connect_timeout_s,
            "read_timeout": max(30.0, config.connect_timeout_s),
            "retries": {"max_attempts": config.max_attempts, "mode": "standard"},
        },
        # Listings must see objects written a moment ago by other workers.
        "use_listings_cache": False,
        "skip_instance_cache": True,
    }
    if config.key:
        options["key"] = config.key
    if config.secret:
        options["secret"] = config.secret
    options.update(config.extra)
    return fsspec.filesystem("s3", **options)


# Registry: URL scheme -> filesystem factory.
_FILESYSTEMS: dict[str, Callable[[StorageConfig], fsspec.AbstractFileSystem]] = {
    "file": _local_fs,
    "s3": _s3_fs,
}


def split_url(url: str) -> tuple[str, str]:
    """Return ``(scheme, path)``; a plain path has scheme ``file``."""
    if not isinstance(url, str) or not url:
        raise StorageError(f"empty storage URL: {url!r}")
    if "://" not in url:
        return "file", os.path.abspath(os.path.expanduser(url))
    scheme, rest = url.split("://", 1)
    scheme = scheme.lower()
    if scheme not in _FILESYSTEMS:
        known = ", ".join(sorted(_FILESYSTEMS))
        raise StorageError(
            f"unknown URL scheme '{scheme}://' in {url}; use a local path or one of: {known}"
        )
    if scheme == "file":
        return scheme, os.path.abspath(os.path.expanduser(rest))
    if not rest.strip("/"):
        raise StorageError(f"storage URL {url} names no bucket")
    return scheme, rest.rstrip("/")


@dataclass(frozen=True)
class Location:
    """A resolved storage location: filesystem + root path + the original URL."""

    fs: fsspec.AbstractFileSystem
    root: str
    url: str
    scheme: str

    @property
    def is_local(self) -> bool:
        return self.scheme == "file"

    def path(self, *parts: str) -> str:
        """Path inside the filesystem for a relative name under the root."""
        return posixpath.join(self.root, *parts) if parts else self.root

    def url_of(self, *parts: str) -> str:
        """Full URL (with scheme) of a relative name under the root."""
        p = self.path(*parts)
        return p if self.is_local else f"{self.scheme}://{p}"

    def arrow_filesystem(self):
        """This filesystem as a pyarrow one, for Ray Data readers (``filesystem=``).

        Paths passed with it are filesystem paths (:meth:`path`), not URLs.
        """
        from pyarrow.fs import FSSpecHandler, PyFileSystem

        return PyFileSystem(FSSpecHandler(self.fs))

    def child(self, *parts: str) -> "Location":
        """A location rooted at a sub-folder of this one."""
        return Location(self.fs, self.path(*parts), self.url_of(*parts), self.scheme)

    # -- reading ---------------------------------------------------------
    def exists(self, rel: str = "") -> bool:
        return _call(self, "exists", lambda: self.fs.exists(self.path(rel) if rel else self.root))

    def read_bytes(self, rel: str) -> bytes:
        return _call(self, "read", lambda: self.fs.cat_file(self.path(rel)))

    def open_read(self, rel: str) -> IO[bytes]:
        return _call(self, "open", lambda: self.fs.open(self.path(rel), "rb"))

    def list(self, rel: str = "") -> list[str]:
        """Names (not paths) of the files directly under ``rel``; [] if absent."""
        target = self.path(rel) if rel else self.root

        def _ls() -> list[str]:
            try:
                entries = self.fs.ls(target, detail=True)
            except FileNotFoundError:
                return []
            return sorted(
                posixpath.basename(e["name"].rstrip("/"))
                for e in entries
                if e.get("type") == "file"
            )

        return _call(self, "list", _ls)

    def size(self, rel: str) -> int:
        return int(_call(self, "stat", lambda: self.fs.size(self.path(rel))))

    # -- writing ---------------------------------------------------------
    def put_bytes(self, rel: str, data: bytes) -> None:
        """Write ``data`` atomically: readers see the old object or the whole new one."""
        with self.open_atomic(rel) as fh:
            fh.write(data)

    @contextlib.contextmanager
    def open_atomic(self, rel: str) -> Iterator[IO[bytes]]:
        """A binary stream whose content appears under ``rel`` only on clean exit.

        Locally: a temp file in the same folder, fsynced and renamed. On S3: a
        streamed (multipart) upload that is aborted if the block raises, so no
        object appears; S3 makes the object visible only when the upload completes.
        """
        final = self.path(rel)
        if self.is_local:
            folder = posixpath.dirname(final)
            os.makedirs(folder, exist_ok=True)
            tmp = posixpath.join(folder, f".tmp-{uuid.uuid4().hex}-{posixpath.basename(final)}")
            try:
                with open(tmp, "wb") as fh:
                    yield fh
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, final)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise
            return
        fh = _call(self, "write", lambda: self.fs.open(final, "wb"))
        try:
            yield fh
        except BaseException:
            # Abort the multipart upload: nothing becomes visible.
            with contextlib.suppress(Exception):
                fh.discard()
                fh.closed = True  # discard() drops the buffer; keep __del__ from flushing it
            raise
        _call(self, "write", fh.close)

    def create_exclusive(self, rel: str, data: bytes) -> None:
        """Create ``rel`` holding ``data`` only if nothing is there; else raise FileExistsError.

        The whole content appears at once, and of two writers racing for one
        name exactly one wins. Locally: a temp file hard-linked to the name
        (``link`` fails on an existing name, like ``O_EXCL``). On S3: a PUT with
        ``If-None-Match: *`` (s3fs's ``mode="create"``), which AWS S3 and
        moto's server answer with 412 when the key exists; s3fs raises
        FileExistsError for it.
        """
        final = self.path(rel)
        if not self.is_local:
            _call(self, "create", lambda: self.fs.pipe_file(final, data, mode="create"))
            return
        folder = posixpath.dirname(final)
        os.makedirs(folder, exist_ok=True)
        tmp = posixpath.join(folder, f".tmp-{uuid.uuid4().hex}-{posixpath.basename(final)}")
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.link(tmp, final)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def remove(self, rel: str) -> None:
        """Delete a file if it exists."""
        path = self.path(rel)

        def _rm() -> None:
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm_file(path)

        _call(self, "delete", _rm)

    def ensure_writable(self) -> None:
        """Fail early with a clear message if the root cannot be written."""
        if self.is_local:
            try:
                os.makedirs(self.root, exist_ok=True)
            except OSError as exc:
                raise StorageError(f"cannot create {self.root}: {exc.strerror}") from exc
            if not os.access(self.root, os.W_OK):
                raise StorageError(f"no write permission on {self.root}")
            return
        bucket = self.root.split("/", 1)[0]
        if not _call(self, "check bucket", lambda: self.fs.exists(bucket)):
            raise StorageError(f"bucket '{bucket}' does not exist (from {self.url})")


def _call(loc: Location, what: str, fn: Callable):
    """Run a filesystem call, turning connection failures into one-line errors."""
    try:
        return fn()
    except StorageError:
        raise
    except (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError):
        raise
    except PermissionError as exc:
        raise StorageError(f"{what} {loc.url}: permission denied ({exc})") from exc
    except OSError as exc:
        raise StorageError(f"{what} {loc.url}: {_describe(exc)}") from exc
    except Exception as exc:  # botocore / aiohttp errors do not share a base class
        name = type(exc).__name__
        if "Endpoint" in name or "Connect" in name or "Credentials" in name or "ClientError" in name:
            raise StorageError(f"{what} {loc.url}: {_describe(exc)}") from exc
        raise


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".strip()


def open_location(url: str, config: StorageConfig | None = None) -> Location:
    """Resolve a URL (path, file://, s3://) to a :class:`Location`."""
    scheme, path = split_url(url)
    fs = _FILESYSTEMS[scheme](config or StorageConfig())
    shown = path if scheme == "file" else f"{scheme}://{path}"
    return Location(fs=fs, root=path, url=shown, scheme=scheme)
