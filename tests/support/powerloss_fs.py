"""A FUSE file system that loses everything not made durable, on command (like LazyFS).

Jepsen tests power loss with LazyFS: writes are kept in a cache until fsynced, and a
"crash" command throws the cache away. LazyFS cannot be installed here, so this is the
small equivalent the broker's tests need, and it models directory entries too (LazyFS
passes them through):

* File data: every write and truncate since the file's last ``fsync``/``fdatasync``
  is undone by a drop. Only the byte ranges that were durable are remembered (their
  pre-images), so appends cost nothing extra.
* Directory entries: creating, unlinking or renaming a name, ``mkdir`` and ``rmdir``
  become durable only when *the directory holding the entry* is fsynced (open it
  ``O_RDONLY`` and ``fsync`` the descriptor). Fsyncing a file does not make its name
  durable. A drop restores every directory to its entries at its last fsync; files
  and directories reachable from none of them are gone.

Writing ``drop`` to the control file ``/.powerloss`` at the root of the mount throws
everything unsynced away; the write returns once that is done. The process whose
files vanished should be dead by then (kill -9 it first); its stale file handles get
``EBADF``.

Layout: the tree of names lives in this process's memory; file contents live in one
backing file per inode under the backing directory. Run as a script::

    python powerloss_fs.py BACKING_DIR MOUNTPOINT

It runs single-threaded in the foreground until unmounted (``fusermount3 -u``).
Hard links, symlinks and special files are not supported (``EPERM``).
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONTROL_NAME = ".powerloss"
ROOT_INO = 1


@dataclass
class Node:
    """One file or directory."""

    ino: int
    is_dir: bool
    mode: int
    mtime_ns: int = field(default_factory=time.time_ns)
    # Directories: the names now, and the names as of the last fsync of the directory.
    entries: dict[str, int] = field(default_factory=dict)
    durable_entries: dict[str, int] = field(default_factory=dict)
    # Files: backing descriptor, size now, size at the last fsync and the pre-images
    # of durable bytes overwritten since then (oldest first).
    fd: int = -1
    size: int = 0
    durable_size: int = 0
    undo: list[tuple[int, bytes]] = field(default_factory=list)


class VolatileTree:
    """The file system's state and semantics, without FUSE (so it is testable alone)."""

    def __init__(self, backing: str) -> None:
        self.backing = backing
        self.nodes: dict[int, Node] = {ROOT_INO: Node(ROOT_INO, True, stat.S_IFDIR | 0o755)}
        self._next_ino = ROOT_INO + 1
        self.handles: dict[int, tuple[int, bool]] = {}  # fh -> (ino, opened O_APPEND)
        self._next_fh = 1
        self.drops = 0

    # -- names ----------------------------------------------------------------------

    def lookup(self, path: str) -> Node:
        node = self.nodes[ROOT_INO]
        for part in _parts(path):
            if not node.is_dir:
                raise OSError(errno.ENOTDIR, path)
            ino = node.entries.get(part)
            if ino is None:
                raise OSError(errno.ENOENT, path)
            node = self.nodes[ino]
        return node

    def _parent(self, path: str) -> tuple[Node, str]:
        parts = _parts(path)
        if not parts:
            raise OSError(errno.EBUSY, path)
        parent = self.lookup("/" + "/".join(parts[:-1]))
        if not parent.is_dir:
            raise OSError(errno.ENOTDIR, path)
        return parent, parts[-1]

    def _new_node(self, is_dir: bool, mode: int) -> Node:
        ino = self._next_ino
        self._next_ino += 1
        node = Node(ino, is_dir, mode)
        if not is_dir:
            node.fd = os.open(
                os.path.join(self.backing, str(ino)), os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600
            )
        self.nodes[ino] = node
        return node

    def mkdir(self, path: str, mode: int) -> None:
        parent, name = self._parent(path)
        if name in parent.entries:
            raise OSError(errno.EEXIST, path)
        node = self._new_node(True, stat.S_IFDIR | (mode & 0o7777))
        parent.entries[name] = node.ino
        parent.mtime_ns = time.time_ns()

    def create(self, path: str, mode: int, flags: int) -> int:
        parent, name = self._parent(path)
        existing = parent.entries.get(name)
        if existing is not None:
            if flags & os.O_EXCL:
                raise OSError(errno.EEXIST, path)
            node = self.nodes[existing]
            if flags & os.O_TRUNC:
                self.truncate(node, 0)
        else:
            node = self._new_node(False, stat.S_IFREG | (mode & 0o7777))
            parent.entries[name] = node.ino
            parent.mtime_ns = time.time_ns()
        return self._handle(node, flags)

    def open(self, path: str, flags: int) -> int:
        node = self.lookup(path)
        if node.is_dir:
            raise OSError(errno.EISDIR, path)
        return self._handle(node, flags)

    def _handle(self, node: Node, flags: int) -> int:
        fh = self._next_fh
        self._next_fh += 1
        self.handles[fh] = (node.ino, bool(flags & os.O_APPEND))
        return fh

    def release(self, fh: int) -> None:
        self.handles.pop(fh, None)

    def unlink(self, path: str) -> None:
        parent, name = self._parent(path)
        ino = parent.entries.get(name)
        if ino is None:
            raise OSError(errno.ENOENT, path)
        if self.nodes[ino].is_dir:
            raise OSError(errno.EISDIR, path)
        del parent.entries[name]
        parent.mtime_ns = time.time_ns()

    def rmdir(self, path: str) -> None:
        parent, name = self._parent(path)
        ino = parent.entries.get(name)
        if ino is None:
            raise OSError(errno.ENOENT, path)
        node = self.nodes[ino]
        if not node.is_dir:
            raise OSError(errno.ENOTDIR, path)
        if node.entries:
            raise OSError(errno.ENOTEMPTY, path)
        del parent.entries[name]
        parent.mtime_ns = time.time_ns()

    def rename(self, old: str, new: str) -> None:
        old_parent, old_name = self._parent(old)
        new_parent, new_name = self._parent(new)
        ino = old_parent.entries.get(old_name)
        if ino is None:
            raise OSError(errno.ENOENT, old)
        moving = self.nodes[ino]
        target = new_parent.entries.get(new_name)
        if target == ino:
            return
        if target is not None:
            replaced = self.nodes[target]
            if replaced.is_dir and not moving.is_dir:
                raise OSError(errno.EISDIR, new)
            if moving.is_dir and not replaced.is_dir:
                raise OSError(errno.ENOTDIR, new)
            if replaced.is_dir and replaced.entries:
                raise OSError(errno.ENOTEMPTY, new)
        del old_parent.entries[old_name]
        new_parent.entries[new_name] = ino
        now = time.time_ns()
        old_parent.mtime_ns = new_parent.mtime_ns = now

    # -- data -----------------------------------------------------------------------

    def node_of(self, fh: int) -> tuple[Node, bool]:
        try:
            ino, append = self.handles[fh]
        except KeyError:
            raise OSError(errno.EBADF, "stale file handle (dropped by a power loss)") from None
        return self.nodes[ino], append

    def read(self, fh: int, size: int, offset: int) -> bytes:
        node, _ = self.node_of(fh)
        return os.pread(node.fd, size, offset)

    def write(self, fh: int, data: bytes, offset: int) -> int:
        node, append = self.node_of(fh)
        if append:
            offset = node.size
        self._remember(node, offset, offset + len(data))
        written = os.pwrite(node.fd, data, offset)
        node.size = max(node.size, offset + written)
        node.mtime_ns = time.time_ns()
        return written

    def truncate(self, node: Node, length: int) -> None:
        if node.is_dir:
            raise OSError(errno.EISDIR, "truncate")
        if length < node.size:
            self._remember(node, length, node.size)
        os.ftruncate(node.fd, length)
        node.size = length
        node.mtime_ns = time.time_ns()

    def _remember(self, node: Node, start: int, end: int) -> None:
        """Keep the bytes of [start, end) that were durable, to restore them on a drop."""
        end = min(end, node.durable_size)
        if start < end:
            node.undo.append((start, os.pread(node.fd, end - start, start)))

    # -- durability -------------------------------------------------------------------

    def fsync(self, node: Node) -> None:
        if node.is_dir:
            self.fsync_dir(node)
            return
        node.durable_size = node.size
        node.undo.clear()

    def fsync_dir(self, node: Node) -> None:
        node.durable_entries = dict(node.entries)
        self._collect()

    def drop(self) -> None:
        """Power loss: return every file and directory to its last fsynced state."""
        self.drops += 1
        self.handles.clear()
        for node in self.nodes.values():
            if node.is_dir:
                node.entries = dict(node.durable_entries)
            elif node.undo or node.size != node.durable_size:
                for offset, data in reversed(node.undo):
                    os.pwrite(node.fd, data, offset)
                os.ftruncate(node.fd, node.durable_size)
                node.size = node.durable_size
                node.undo.clear()
        self._collect()

    def _collect(self) -> None:
        """Forget nodes reachable neither now nor after a drop, and not open."""
        keep = {ROOT_INO} | {ino for ino, _ in self.handles.values()}
        stack = [ROOT_INO]
        while stack:
            node = self.nodes[stack.pop()]
            for ino in (*node.entries.values(), *node.durable_entries.values()):
                if ino not in keep:
                    keep.add(ino)
                    if self.nodes[ino].is_dir:
                        stack.append(ino)
        for ino in [i for i in self.nodes if i not in keep]:
            node = self.nodes.pop(ino)
            if node.fd >= 0:
                os.close(node.fd)
                os.unlink(os.path.join(self.backing, str(ino)))

    def attrs(self, node: Node) -> dict[str, Any]:
        return {
            "st_ino": node.ino,
            "st_mode": node.mode,
            "st_nlink": 2 if node.is_dir else 1,
            "st_size": 4096 if node.is_dir else node.size,
            "st_blocks": (node.size + 511) // 512,
            "st_uid": os.getuid(),
            "st_gid": os.getgid(),
            "st_atime": node.mtime_ns,
            "st_mtime": node.mtime_ns,
            "st_ctime": node.mtime_ns,
        }


def _parts(path: str) -> list[str]:
    return [p for p in path.split("/") if p]


def _operations(tree: VolatileTree) -> Any:
    """The mfusepy adapter: every FUSE call maps to one :class:`VolatileTree` call."""
    import mfusepy

    control_fh = 0  # real handles start at 1

    class PowerLossOperations(mfusepy.Operations):  # type: ignore[misc]
        use_ns = True

        def getattr(self, path: str, fh: int | None = None) -> dict[str, Any]:
            if path == "/" + CONTROL_NAME:
                return {"st_mode": stat.S_IFREG | 0o600, "st_nlink": 1, "st_size": 0}
            return tree.attrs(tree.lookup(path))

        def readdir(self, path: str, fh: int) -> list[str]:
            node = tree.lookup(path)
            if not node.is_dir:
                raise OSError(errno.ENOTDIR, path)
            return [".", "..", *node.entries]

        def access(self, path: str, amode: int) -> int:
            if path != "/" + CONTROL_NAME:
                tree.lookup(path)
            return 0

        def mkdir(self, path: str, mode: int) -> int:
            tree.mkdir(path, mode)
            return 0

        def rmdir(self, path: str) -> int:
            tree.rmdir(path)
            return 0

        def unlink(self, path: str) -> int:
            tree.unlink(path)
            return 0

        def rename(self, old: str, new: str) -> int:
            tree.rename(old, new)
            return 0

        def create(self, path: str, mode: int, flags: int) -> int:
            return tree.create(path, mode, flags)

        def open(self, path: str, flags: int) -> int:
            if path == "/" + CONTROL_NAME:
                return control_fh
            return tree.open(path, flags)

        def release(self, path: str, fh: int) -> int:
            tree.release(fh)
            return 0

        def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
            if fh == control_fh:
                return f"drops={tree.drops}\n".encode()[offset : offset + size]
            return tree.read(fh, size, offset)

        def write(self, path: str, data: bytes, offset: int, fh: int) -> int:
            if fh == control_fh:
                command = data.strip()
                if command != b"drop":
                    raise OSError(errno.EINVAL, "unknown command")
                tree.drop()
                return len(data)
            return tree.write(fh, data, offset)

        def truncate(self, path: str, length: int, fh: int | None = None) -> int:
            if path == "/" + CONTROL_NAME or fh == control_fh:
                return 0
            node = tree.node_of(fh)[0] if fh is not None else tree.lookup(path)
            tree.truncate(node, length)
            return 0

        def fsync(self, path: str, datasync: int, fh: int) -> int:
            if fh != control_fh:
                tree.fsync(tree.node_of(fh)[0])
            return 0

        def fsyncdir(self, path: str, datasync: int, fh: int) -> int:
            tree.fsync_dir(tree.lookup(path))
            return 0

        def flush(self, path: str, fh: int) -> int:
            return 0

        def chmod(self, path: str, mode: int) -> int:
            node = tree.lookup(path)
            node.mode = (node.mode & ~0o7777) | (mode & 0o7777)
            return 0

        def chown(self, path: str, uid: int, gid: int) -> int:
            return 0

        def utimens(self, path: str, times: tuple[int, int] | None = None) -> int:
            node = tree.lookup(path)
            node.mtime_ns = times[1] if times else time.time_ns()
            return 0

        def statfs(self, path: str) -> dict[str, int]:
            st = os.statvfs(tree.backing)
            return {
                key: getattr(st, key)
                for key in (
                    "f_bsize",
                    "f_frsize",
                    "f_blocks",
                    "f_bfree",
                    "f_bavail",
                    "f_files",
                    "f_ffree",
                    "f_favail",
                    "f_namemax",
                )
            }

    return PowerLossOperations()


def unavailable_reason() -> str | None:
    """Why a power-loss mount cannot run here, or None if it can."""
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse on this machine"
    if shutil.which("fusermount3") is None:
        return "fusermount3 missing (Debian package fuse3)"
    try:
        import mfusepy  # noqa: F401
    except (ImportError, OSError) as exc:  # OSError: libfuse3 itself is missing
        return f"mfusepy/libfuse3 unavailable: {exc}"
    if os.geteuid() != 0 and not os.access("/dev/fuse", os.R_OK | os.W_OK):
        return "/dev/fuse is not usable by this user"
    return None


class PowerLossMount:
    """A mounted :class:`VolatileTree` in a child process, driven from a test.

    ``path`` is the mountpoint; :meth:`drop` loses everything not fsynced.
    """

    def __init__(self, workdir: Path) -> None:
        self.backing = workdir / "powerloss-backing"
        self.path = workdir / "powerloss-mount"
        self.log_path = workdir / "powerloss.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> PowerLossMount:
        self.backing.mkdir(parents=True, exist_ok=True)
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, __file__, str(self.backing), str(self.path)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 20
        while not os.path.ismount(self.path):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError(f"power-loss mount failed:\n{self.log_path.read_text()}")
            time.sleep(0.02)
        return self

    def drop(self) -> None:
        """Lose every write, create, rename and unlink not yet made durable."""
        with open(self.path / CONTROL_NAME, "wb", buffering=0) as control:
            control.write(b"drop")

    def __exit__(self, *exc: object) -> None:
        if self.proc is None:
            return
        subprocess.run(["fusermount3", "-u", "-z", str(self.path)], check=False)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(20)
        self.proc = None


def main(argv: list[str]) -> None:
    import mfusepy

    backing, mountpoint = argv
    tree = VolatileTree(backing)
    mfusepy.FUSE(
        _operations(tree),
        mountpoint,
        raw_fi=False,
        foreground=True,
        nothreads=True,
        # Every read and write reaches this process, and the kernel caches no names
        # or sizes: after a drop nothing stale can be served from the kernel.
        direct_io=True,
        attr_timeout=0,
        entry_timeout=0,
        negative_timeout=0,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
