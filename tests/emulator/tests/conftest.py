"""Fixtures: the emulator started through its real entry point, and clients.

The emulator runs as a subprocess on a free port, exactly as the provider's
end-to-end tests run it, so these tests also cover start-up and shutdown.
Tests share one emulator and keep out of each other's way with unique names.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

EMULATOR_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(EMULATOR_DIR))  # for the unit tests of pure helpers

REGION = "us-east-1"
ACCOUNT = "123456789012"
START_TIMEOUT_S = 60


@dataclass
class Emulator:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, service: str, region: str = REGION, **config: Any) -> Any:
        # when_supported makes boto3 send the flexible-checksum headers
        # (x-amz-checksum-crc32 ...) that the Rust SDK sends.
        settings = {
            "request_checksum_calculation": "when_supported",
            "retries": {"max_attempts": 1},
            **config,
        }
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(**settings),
        )

    def signed(
        self,
        service: str,
        method: str,
        path: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        region: str = REGION,
    ) -> requests.Response:
        """A raw SigV4-signed request, for wire details boto3 does not expose."""
        request = AWSRequest(method=method, url=self.endpoint + path, data=body, headers=headers or {})
        SigV4Auth(Credentials("testing", "testing"), service, region).add_auth(request)
        return requests.request(method, request.url, data=body, headers=dict(request.headers))

    def json_call(
        self, service: str, target: str, payload: dict[str, Any], version: str = "1.0", region: str = REGION
    ) -> requests.Response:
        """A JSON-protocol call exactly as the AWS SDK for Rust frames it."""
        return self.signed(
            service,
            "POST",
            "/",
            json.dumps(payload).encode(),
            {"Content-Type": f"application/x-amz-json-{version}", "X-Amz-Target": target},
            region,
        )

    def calls(self) -> list[dict[str, Any]]:
        return requests.get(f"{self.endpoint}/_emulator/calls").json()

    def reset_calls(self) -> None:
        requests.post(f"{self.endpoint}/_emulator/calls/reset").raise_for_status()

    def set_faults(self, spec: str) -> None:
        requests.post(f"{self.endpoint}/_emulator/faults", json={"spec": spec}).raise_for_status()

    def set_latency(self, spec: str) -> None:
        requests.post(f"{self.endpoint}/_emulator/latency", json={"spec": spec}).raise_for_status()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_emulator(*args: str, env_extra: dict[str, str] | None = None) -> Emulator:
    log = tempfile.NamedTemporaryFile(prefix="emulator-", suffix=".log", delete=False)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("MOTO_ACCOUNT_ID", None)
    env.pop("SECUREPIPELINE_EMULATOR_FAULTS", None)  # faults only where a test asks
    env.pop("SECUREPIPELINE_EMULATOR_LATENCY", None)  # likewise the latency model
    env.update(env_extra or {})
    process = subprocess.Popen(
        [sys.executable, "-m", "securepipeline_emulator", "--port", "0", *args],
        cwd=EMULATOR_DIR,
        stdout=subprocess.PIPE,
        stderr=log,
        env=env,
    )
    line = _first_line(process, START_TIMEOUT_S)
    if not line.startswith("port="):
        process.kill()
        raise RuntimeError(f"emulator did not announce its port: {line!r}\n{Path(log.name).read_text()}")
    return Emulator(process, int(line.removeprefix("port=")), Path(log.name))


def _first_line(process: subprocess.Popen[bytes], timeout: float) -> str:
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            process.kill()
            raise RuntimeError(f"emulator printed nothing within {timeout}s")
    return process.stdout.readline().decode().strip()


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    instance = start_emulator()
    yield instance
    code = instance.stop()
    assert code == 0, f"emulator exited with {code}:\n{instance.log()}"
    instance.log_path.unlink()  # kept when the exit assertion fails


@pytest.fixture
def fresh_emulator() -> Iterator[Emulator]:
    """An emulator of the test's own, for tests about the process itself."""
    instance = start_emulator()
    yield instance
    instance.stop()
    instance.log_path.unlink()


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Unique resource names, so tests sharing an emulator never collide."""

    def make(prefix: str) -> str:
        return f"{prefix}-{uuid.uuid4().hex[:10]}"

    return make
