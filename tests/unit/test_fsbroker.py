"""The embedded broker writes each message atomically: a consumer never sees half a message."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from queue import Empty
from typing import Any

import pytest
from kombu import Connection

from conveyor.engine import create_app
from conveyor.fsbroker import TRANSPORT, Channel
from conveyor.queues import _filesystem_depth
from conveyor.settings import load_settings


@pytest.fixture
def channel(tmp_path: Path) -> Iterator[Channel]:
    options = {
        "data_folder_in": str(tmp_path),
        "data_folder_out": str(tmp_path),
        "control_folder": str(tmp_path / "control"),
    }
    with Connection("filesystem://", transport=TRANSPORT, transport_options=options) as conn:
        yield conn.default_channel


def test_the_embedded_app_uses_the_atomic_transport(tmp_path: Path) -> None:
    app = create_app(load_settings(data_dir=str(tmp_path)))
    with app.connection_for_write() as conn:
        assert isinstance(conn.default_channel, Channel)


def test_a_message_being_written_is_invisible_to_consumers_and_depth(
    channel: Channel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen_mid_write: list[object] = []
    real_replace = os.replace

    def replace_after_probing(src: Any, dst: Any) -> None:
        # the moment kombu's own transport exposed an empty/partial file to the consumer
        assert Path(src).read_bytes(), "payload written before the rename"
        with suppress(Empty):
            seen_mid_write.append(channel._get("jobs"))
        seen_mid_write.append(_filesystem_depth(tmp_path, "jobs"))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_after_probing)
    channel._put("jobs", {"body": "x" * 50_000})
    monkeypatch.undo()

    assert seen_mid_write == [0]
    assert _filesystem_depth(tmp_path, "jobs") == 1
    assert channel._get("jobs") == {"body": "x" * 50_000}
    assert list(tmp_path.iterdir()) == []


def test_every_message_arrives_once(channel: Channel) -> None:
    for i in range(20):
        channel._put("jobs", {"i": i})
    assert sorted(channel._get("jobs")["i"] for _ in range(20)) == list(range(20))
    with pytest.raises(Empty):
        channel._get("jobs")


def _bind_many(folder: str, exchange: str, start: int, barrier: Any) -> None:
    options = {"data_folder_in": folder, "data_folder_out": folder, "control_folder": folder}
    with Connection("filesystem://", transport=TRANSPORT, transport_options=options) as conn:
        channel = conn.default_channel
        barrier.wait()  # every process binds its first queue at the same moment
        for i in range(start, start + 5):
            channel._queue_bind(exchange, "", "", f"reply-{i}")


def test_concurrent_binds_to_a_new_exchange_keep_a_valid_table(tmp_path: Path) -> None:
    """Celery's pidbox binds a reply queue per inspect: first binds must not corrupt the table."""
    import multiprocessing  # noqa: PLC0415

    ctx = multiprocessing.get_context("fork")
    for round_ in range(10):
        exchange = f"reply.pidbox.{round_}"
        barrier = ctx.Barrier(6)
        procs = [
            ctx.Process(target=_bind_many, args=(str(tmp_path), exchange, n * 5, barrier))
            for n in range(6)
        ]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(30)
            assert proc.exitcode == 0
        options = {"control_folder": str(tmp_path), "data_folder_in": str(tmp_path)}
        with Connection("filesystem://", transport=TRANSPORT, transport_options=options) as conn:
            table = conn.default_channel.get_table(exchange)
        assert sorted(q.queue for q in table) == sorted(f"reply-{i}" for i in range(30))


def test_an_exchange_table_being_created_reads_as_no_bindings(channel: Channel) -> None:
    channel.control_folder.mkdir(exist_ok=True)
    channel._exchange_file("new").touch()  # created, not yet written
    assert channel.get_table("new") == []
    channel._queue_bind("new", "", "", "q")
    assert [q.queue for q in channel.get_table("new")] == ["q"]
