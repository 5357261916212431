"""The embedded default's broker writes each message atomically."""

from kombu import Connection

from portal.core import fs_transport


def test_filesystem_scheme_uses_the_atomic_transport(settings):
    from portal.celery import app  # registers the alias

    with app.connection_for_write() as connection:
        if connection.transport_cls == "filesystem":
            assert isinstance(connection.transport, fs_transport.Transport)


def test_messages_round_trip_and_leave_no_temporary_files(tmp_path):
    options = {
        "data_folder_in": str(tmp_path),
        "data_folder_out": str(tmp_path),
        "control_folder": str(tmp_path / "control"),
        "store_processed": False,
    }
    with Connection(
        "filesystem://", transport=fs_transport.Transport, transport_options=options
    ) as connection:
        queue = connection.SimpleQueue("atomic-test")
        for number in range(50):
            queue.put({"n": number})
        assert not list(tmp_path.glob("*.tmp"))
        received = [queue.get(timeout=2).payload["n"] for _ in range(50)]
        queue.close()
    assert sorted(received) == list(range(50))  # same-millisecond order is not kept
