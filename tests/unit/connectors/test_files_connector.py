"""The files connector's loop without Kafka (fake sender): resuming across a rotation
that happened while it was down, and start_at = "end"."""

from __future__ import annotations

import asyncio
from pathlib import Path

from haeryu.connectors.files import FilesConfig, FileTail
from haeryu.connectors.runtime import MemoryPositions
from support.fake_sender import FakeSender, context


def run_until(config: FilesConfig, positions: MemoryPositions, sender: FakeSender, n: int) -> None:
    """Run a fresh connector until ``sender`` holds ``n`` records and their position is saved."""

    async def main() -> None:
        stopping = asyncio.Event()
        task = asyncio.create_task(FileTail(config).run(context(sender, stopping, positions)))
        deadline = asyncio.get_running_loop().time() + 10
        while len(sender.sent) < n or not _saved_all(positions):
            assert asyncio.get_running_loop().time() < deadline, [r.value for r in sender.sent]
            assert not task.done(), task
            await asyncio.sleep(0.01)
        stopping.set()
        await asyncio.wait_for(task, 10)

    asyncio.run(main())


def _saved_all(positions: MemoryPositions) -> bool:
    saved = positions.saved
    if not saved:
        return False
    return all(Path(f["path"]).stat().st_size == f["offset"] for f in saved["files"])


def config(tmp_path: Path, **extra: object) -> FilesConfig:
    return FilesConfig.model_validate(
        {
            "type": "files",
            "paths": [str(tmp_path / "*.log")],
            "topic": "t",
            "poll_interval_s": 0.01,
            "glob_interval_s": 0.01,
            "rotated_close_after_s": 0,
            **extra,
        }
    )


def test_rotation_while_down_is_read_to_its_end_through_the_inode(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"a1\na2\n")
    positions, sender = MemoryPositions(), FakeSender()
    run_until(config(tmp_path), positions, sender, 2)
    # While the connector is down: more lines, then rotation by rename, then a new file.
    with log.open("ab") as f:
        f.write(b"a3\na4\n")
    log.rename(tmp_path / "app.log.1")  # no longer matched by the glob
    log.write_bytes(b"b1\n")
    run_until(config(tmp_path), positions, sender, 5)
    values = [r.value for r in sender.sent]
    assert sorted(values) == [b"a1", b"a2", b"a3", b"a4", b"b1"]  # nothing lost, nothing twice
    assert dict(sender.sent[-1].headers)["haeryu.origin.file"] in (
        str(tmp_path / "app.log").encode(),
        str(tmp_path / "app.log.1").encode(),
    )


def test_start_at_end_skips_what_files_held_on_the_first_run(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"old1\nold2\n")
    positions, sender = MemoryPositions(), FakeSender()

    async def main() -> None:
        stopping = asyncio.Event()
        tail = FileTail(config(tmp_path, start_at="end"))
        task = asyncio.create_task(tail.run(context(sender, stopping, positions)))
        while not _saved_all(positions):
            await asyncio.sleep(0.01)
        with log.open("ab") as f:
            f.write(b"new1\n")
        while not sender.sent:
            await asyncio.sleep(0.01)
        stopping.set()
        await asyncio.wait_for(task, 10)

    asyncio.run(asyncio.wait_for(main(), 20))
    assert [r.value for r in sender.sent] == [b"new1"]
