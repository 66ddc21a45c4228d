"""The process contract: one `port=` line, loopback only, clean exit on signals."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import requests

from conftest import Emulator


def test_announces_only_its_port_and_exits_cleanly_on_sigterm(fresh_emulator: Emulator) -> None:
    assert 0 < fresh_emulator.port < 65536
    assert fresh_emulator.client("sts").get_caller_identity()["Account"] == "123456789012"

    assert fresh_emulator.stop(signal.SIGTERM) == 0
    assert fresh_emulator.process.stdout is not None
    assert fresh_emulator.process.stdout.read() == b"", "stdout must hold only the port line"


def test_exits_cleanly_on_sigint(fresh_emulator: Emulator) -> None:
    assert fresh_emulator.stop(signal.SIGINT) == 0


def test_listens_on_loopback_only(fresh_emulator: Emulator) -> None:
    # Read the kernel's socket table rather than probe other addresses.
    table = Path("/proc/net/tcp")
    if not table.exists():
        pytest.skip("needs Linux /proc/net/tcp")
    listening = [
        fields[1]
        for fields in (line.split() for line in table.read_text().splitlines()[1:])
        if fields[3] == "0A" and int(fields[1].split(":")[1], 16) == fresh_emulator.port
    ]
    assert listening == ["0100007F:%04X" % fresh_emulator.port]  # 127.0.0.1, little-endian


def test_admin_paths_do_not_shadow_buckets(emulator: Emulator, unique) -> None:
    s3 = emulator.client("s3")
    bucket = unique("emulator")  # the admin prefix without its underscore
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="_emulator/calls", Body=b"object, not admin")

    body = s3.get_object(Bucket=bucket, Key="_emulator/calls")["Body"].read()
    assert body == b"object, not admin"

    unknown = requests.get(f"{emulator.endpoint}/_emulator/nothing-here")
    assert unknown.status_code == 404
    assert unknown.json()["error"] == "NotFound"
