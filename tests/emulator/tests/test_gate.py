"""Holding a call open: it is recorded, not answered until released, and
other calls go on meanwhile."""

from __future__ import annotations

import threading
import time

import requests

from conftest import Emulator


def _waiting(emulator: Emulator) -> int:
    return requests.get(f"{emulator.endpoint}/_emulator/held").json()["waiting"]


def test_held_call_waits_until_released(fresh_emulator: Emulator) -> None:
    emulator = fresh_emulator
    requests.post(
        f"{emulator.endpoint}/_emulator/hold",
        json={"service": "sns", "operation": "CreateTopic"},
    ).raise_for_status()
    sns = emulator.client("sns")
    answered = threading.Event()
    created: dict[str, str] = {}

    def create() -> None:
        created.update(sns.create_topic(Name="held-topic"))
        answered.set()

    worker = threading.Thread(target=create)
    worker.start()
    deadline = time.monotonic() + 10
    while _waiting(emulator) == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _waiting(emulator) == 1
    assert not answered.is_set()
    # Other calls are not held, and the held one is already recorded.
    assert sns.list_topics()["Topics"] == []
    assert any(
        (call["service"], call["operation"]) == ("sns", "CreateTopic") for call in emulator.calls()
    )

    requests.post(f"{emulator.endpoint}/_emulator/release").raise_for_status()
    worker.join(10)
    assert answered.is_set()
    assert created["TopicArn"].endswith(":held-topic")
    assert _waiting(emulator) == 0


def test_hold_needs_service_and_operation(emulator: Emulator) -> None:
    response = requests.post(f"{emulator.endpoint}/_emulator/hold", json={"service": "sns"})
    assert response.status_code == 400
    assert "operation" in response.json()["message"]


def test_release_without_hold_is_harmless(emulator: Emulator) -> None:
    requests.post(f"{emulator.endpoint}/_emulator/release").raise_for_status()
    assert _waiting(emulator) == 0
