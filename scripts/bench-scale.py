#!/usr/bin/env python3
"""`make bench-scale`: how long `pulumi` takes with SecurePipeline against an
emulator that answers at AWS's pace (tests/emulator: the latency model), and
what it costs in memory and CPU.

For each stack size (1, 10, 50, 100 pipelines by default) it runs preview,
up, a second up that must change nothing, refresh and destroy, and prints a
table: wall time, AWS calls (writes, throttled, retries), the provider's
peak RSS and CPU time, the engine's peak RSS. For one pipeline it also
computes the critical path of `up` from the emulator's call record
(securepipeline_emulator/critical_path.py) and the ratio of the wall time
to it, with the resources on that path and where time went beyond it.

Numbers only: nothing passes or fails except a command that fails, or a
no-op `up` that writes. Results go to stdout and to --out (Markdown) with
the machine's cores and memory, plus a JSON file beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests/emulator"))

from securepipeline_emulator import critical_path  # noqa: E402
from securepipeline_emulator.latency import LatencyPlan  # noqa: E402

REGION = "us-east-1"
WEST = "us-west-2"
SAMPLE_EVERY_S = 0.05
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# One pipeline with deployments, one of them in a second region, a
# production stage with approval, notifications and a schedule: every kind
# of child the component makes.
PIPELINE = """
  p{index}:
    type: securepipeline:index:SecurePipeline
    properties:
      source:
        repository: example-org/app-{index}
      build:
        commands: ["npm ci", "npm test"]
      notifications:
        emails: [team@example.com]
      schedule: rate(1 day)
      deployments:
        - name: dev
          commands: ["./deploy.sh dev"]
        - name: staging
          region: {west}
          commands: ["./deploy.sh staging"]
        - name: prod
          production: true
          requireApproval: true
          assumeRoleArn: arn:aws:iam::210987654321:role/deployer
          commands: ["./deploy.sh prod"]
"""

STEPS = ("preview", "up", "up (no-op)", "refresh", "destroy")
COMMANDS = {
    "preview": ["preview"],
    "up": ["up", "--yes", "--skip-preview"],
    "up (no-op)": ["up", "--yes", "--skip-preview"],
    "refresh": ["refresh", "--yes", "--skip-preview"],
    "destroy": ["destroy", "--yes", "--skip-preview"],
}


# ----------------------------------------------------------- processes --


@dataclass
class Usage:
    """Peak RSS and CPU seconds of the processes of one kind."""

    peak_rss_kib: int = 0
    cpu_s: float = 0.0


class Sampler(threading.Thread):
    """Polls /proc for the processes under one `pulumi` run: their peak RSS
    (VmHWM, exact whenever sampled) and CPU time (the last sample before a
    process exits; at most one interval is missed)."""

    def __init__(self, root_pid: int) -> None:
        super().__init__(daemon=True)
        self.root_pid = root_pid
        self.stop = threading.Event()
        self.seen: dict[int, tuple[str, int, float]] = {}

    def run(self) -> None:
        while not self.stop.is_set():
            self.sample()
            self.stop.wait(SAMPLE_EVERY_S)
        self.sample()

    def sample(self) -> None:
        parents: dict[int, int] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text()
                except OSError:
                    continue
                fields = stat.rsplit(")", 1)[1].split()
                parents[int(entry)] = int(fields[1])
        for pid in parents:
            if not self._descends(pid, parents):
                continue
            try:
                name = Path(f"/proc/{pid}/comm").read_text().strip()
                stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            hwm = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0)
            cpu = (int(stat[11]) + int(stat[12])) / CLOCK_TICKS
            _, old_hwm, old_cpu = self.seen.get(pid, (name, 0, 0.0))
            self.seen[pid] = (name, max(hwm, old_hwm), max(cpu, old_cpu))

    def _descends(self, pid: int, parents: dict[int, int]) -> bool:
        hops = 0
        while pid and hops < 64:
            if pid == self.root_pid:
                return True
            pid = parents.get(pid, 0)
            hops += 1
        return False

    def usage(self, prefix: str) -> Usage:
        usage = Usage()
        for name, hwm, cpu in self.seen.values():
            if name.startswith(prefix):
                usage.peak_rss_kib = max(usage.peak_rss_kib, hwm)
                usage.cpu_s += cpu
        return usage


# ------------------------------------------------------------ emulator --


class Emulator:
    def __init__(self, latency: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT / "tests/emulator")}
        env.pop("SECUREPIPELINE_EMULATOR_FAULTS", None)
        self.log = tempfile.NamedTemporaryFile(prefix="bench-emulator-", suffix=".log", delete=False)
        self.process = subprocess.Popen(
            [str(ROOT / ".tools/venv/bin/python"), "-m", "securepipeline_emulator", "--port", "0",
             "--latency", latency],
            stdout=subprocess.PIPE,
            stderr=self.log,
            env=env,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().decode().strip()
        if not line.startswith("port="):
            raise SystemExit(f"the emulator did not start: {line!r} (log: {self.log.name})")
        self.endpoint = f"http://127.0.0.1:{line.removeprefix('port=')}"

    def calls(self) -> list[dict[str, Any]]:
        return requests.get(f"{self.endpoint}/_emulator/calls", timeout=60).json()

    def reset(self) -> None:
        requests.post(f"{self.endpoint}/_emulator/calls/reset", timeout=60).raise_for_status()

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(30)
        Path(self.log.name).unlink(missing_ok=True)


# --------------------------------------------------------------- stack --


@dataclass
class StepResult:
    step: str
    wall_s: float
    calls: int
    writes: int
    throttled: int
    retries: int
    failed: int
    provider: Usage
    engine: Usage
    ok: bool
    aws_span_s: float = 0.0


@dataclass
class StackResult:
    pipelines: int
    resources: int = 0
    steps: list[StepResult] = field(default_factory=list)
    critical: dict[str, Any] | None = None


class Stack:
    def __init__(self, emulator: Emulator, provider_dir: Path, pipelines: int) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="bench-scale-"))
        (self.dir / ".state").mkdir()
        program = "".join(PIPELINE.format(index=i, west=WEST) for i in range(pipelines))
        (self.dir / "Pulumi.yaml").write_text(
            f"name: bench-scale\nruntime: yaml\nplugins:\n  providers:\n    - name: securepipeline\n"
            f"      path: {provider_dir}\nresources:{program}"
        )
        self.env = {
            **os.environ,
            "PATH": f"{ROOT / '.tools/bin'}:{os.environ.get('PATH', '')}",
            "PULUMI_HOME": str(self.dir / ".pulumi-home"),
            "PULUMI_BACKEND_URL": f"file://{self.dir / '.state'}",
            "PULUMI_CONFIG_PASSPHRASE": "bench-passphrase",
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "GOTOOLCHAIN": "local",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": REGION,
        }
        self.env.pop("AWS_PROFILE", None)
        self.pulumi(["stack", "init", "bench"], check=True)
        self.pulumi(["config", "set", "securepipeline:region", REGION], check=True)
        self.pulumi(["config", "set", "--path", "securepipeline:endpoints.default", emulator.endpoint], check=True)

    def pulumi(self, args: list[str], check: bool = False) -> tuple[subprocess.CompletedProcess[str], Sampler, float]:
        began = time.monotonic()
        process = subprocess.Popen(
            [str(ROOT / ".tools/bin/pulumi"), *args, "--non-interactive", "--color=never"],
            cwd=self.dir,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        sampler = Sampler(process.pid)
        sampler.start()
        output, _ = process.communicate()
        wall = time.monotonic() - began
        sampler.stop.set()
        sampler.join()
        done = subprocess.CompletedProcess(process.args, process.returncode, output, "")
        if check and done.returncode != 0:
            raise SystemExit(f"pulumi {' '.join(args)} failed:\n{output}")
        return done, sampler, wall

    def resources(self) -> list[dict[str, Any]]:
        done, _, _ = self.pulumi(["stack", "export"], check=True)
        return json.loads(done.stdout)["deployment"].get("resources") or []

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def traffic(calls: list[dict[str, Any]]) -> dict[str, int]:
    return {
        "calls": len(calls),
        "writes": sum(c["write"] for c in calls),
        "throttled": sum(c["fault"] == "throttle" for c in calls),
        "retries": sum(c["retry"] for c in calls),
        "failed": sum(c["fault"] is not None for c in calls),
    }


def bench(emulator: Emulator, provider_dir: Path, pipelines: int, plan: LatencyPlan) -> StackResult:
    stack = Stack(emulator, provider_dir, pipelines)
    result = StackResult(pipelines=pipelines)
    try:
        for step in STEPS:
            emulator.reset()
            done, sampler, wall = stack.pulumi(COMMANDS[step])
            calls = emulator.calls()
            counts = traffic(calls)
            ends = [c["end"] for c in calls if c["end"] is not None]
            span = (max(ends) - min(c["start"] for c in calls)) if calls and ends else 0.0
            row = StepResult(
                step=step,
                wall_s=wall,
                provider=sampler.usage("pulumi-resourc"),
                engine=sampler.usage("pulumi"),
                ok=done.returncode == 0,
                aws_span_s=span,
                **counts,
            )
            # The engine's own RSS, not its children's (they share a prefix).
            row.engine = Usage(
                peak_rss_kib=max((h for n, h, _ in sampler.seen.values() if n == "pulumi"), default=0),
                cpu_s=sum(c for n, _, c in sampler.seen.values() if n == "pulumi"),
            )
            result.steps.append(row)
            print(_row(pipelines, row), flush=True)
            if not row.ok:
                print(done.stdout[-4000:], file=sys.stderr)
                break
            if step == "up":
                resources = stack.resources()
                result.resources = sum(1 for r in resources if r.get("custom"))
                if pipelines == 1:
                    result.critical = analyse(calls, resources, wall, plan)
            if step == "up (no-op)" and row.writes:
                print(f"a no-op up made {row.writes} write calls", file=sys.stderr)
    finally:
        stack.remove()
    return result


# ------------------------------------------------------ critical path --


def analyse(calls: list[dict[str, Any]], resources: list[dict[str, Any]], wall: float, plan: LatencyPlan) -> dict[str, Any]:
    path = critical_path.compute(calls, resources, role_window=plan.role, key_window=plan.key)
    origin = min(c["start"] for c in calls)
    steps = [
        {
            "resource": step.urn.rsplit("::", 1)[-1],
            "kind": step.kind,
            "earliest": [round(step.earliest_start, 2), round(step.earliest_finish, 2)],
            "actual": [
                round(step.actual_start - origin, 2) if step.actual_start is not None else None,
                round(step.actual_finish - origin, 2) if step.actual_finish is not None else None,
            ],
            "calls": step.calls,
            "failed": step.failed_calls,
        }
        for step in path.steps
    ]
    ends = [c["end"] for c in calls if c["end"] is not None]
    return {
        "critical_path_s": round(path.seconds, 3),
        "wall_s": round(wall, 3),
        "ratio": round(path.ratio(wall), 2),
        "aws_span_s": round(max(ends) - origin, 3),
        "unattributed_calls": path.unattributed,
        "path": steps,
        "waits": _waits(path, origin),
    }


def _waits(path: critical_path.CriticalPath, origin: float) -> list[dict[str, Any]]:
    """Per resource: how long after its dependencies were done it began
    (`lag`), and how much longer its calls took than their modelled time
    (`stretch`: retries, sleeps, waits between calls)."""
    finished = {
        urn: max((c["end"] for c in node.calls if c["end"] is not None), default=None)
        for urn, node in path.nodes.items()
    }
    rows = []
    for urn, node in path.nodes.items():
        if not node.calls or urn == critical_path.ROOT:
            continue
        began = node.calls[0]["start"]
        deps = [finished[d] for d in node.depends_on if finished.get(d) is not None]
        lag = began - max(deps) if deps else began - origin
        span = finished[urn] - began
        rows.append(
            {
                "resource": urn.rsplit("::", 1)[-1],
                "lag_s": round(lag, 2),
                "stretch_s": round(span - node.modelled, 2),
                "failed_calls": len(node.calls) - len(node.needed),
                "calls": [
                    f"{c['operation']}{'!' + c['fault'] if c['fault'] else ''}@{c['start'] - origin:.2f}"
                    for c in node.calls
                ],
            }
        )
    return sorted(rows, key=lambda r: -(max(r["lag_s"], 0) + max(r["stretch_s"], 0)))


# -------------------------------------------------------------- report --


HEADER = (
    "| pipelines | step | wall s | AWS calls | writes | throttled | retries | retries/call "
    "| provider peak RSS MiB | provider CPU s | engine peak RSS MiB | engine CPU s |"
)
RULE = "|---|---|---|---|---|---|---|---|---|---|---|---|"


def _row(pipelines: int, row: StepResult) -> str:
    per_call = row.retries / row.calls if row.calls else 0.0
    status = "" if row.ok else " (FAILED)"
    return (
        f"| {pipelines} | {row.step}{status} | {row.wall_s:.1f} | {row.calls} | {row.writes} | {row.throttled} "
        f"| {row.retries} | {per_call:.3f} | {row.provider.peak_rss_kib / 1024:.1f} | {row.provider.cpu_s:.2f} "
        f"| {row.engine.peak_rss_kib / 1024:.1f} | {row.engine.cpu_s:.2f} |"
    )


def machine() -> str:
    memory = next(
        (int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal:")),
        0,
    )
    model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor(),
    )
    return f"{os.cpu_count()} cores ({model}), {memory / 1024 / 1024:.1f} GiB memory, {platform.system()} {platform.release()}"


def report(results: list[StackResult], latency: str, provider: Path) -> str:
    lines = [
        "# SecurePipeline at scale",
        "",
        f"- machine: {machine()}",
        f"- provider: {provider / 'pulumi-resource-securepipeline'}",
        f"- emulator latency model: `{latency}`",
        f"- date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
        "",
        HEADER,
        RULE,
    ]
    for result in results:
        lines += [_row(result.pipelines, row) for row in result.steps]
    lines.append("")
    lines += [f"- {r.pipelines} pipelines: {r.resources} resources in the state" for r in results]
    for result in results:
        if result.critical:
            c = result.critical
            lines += [
                "",
                "## Critical path of `up`, one pipeline",
                "",
                f"- wall time {c['wall_s']} s; critical path {c['critical_path_s']} s; "
                f"ratio **{c['ratio']}**; first AWS call to last answer {c['aws_span_s']} s; "
                f"{c['unattributed_calls']} calls attributed to the deployment as a whole",
                "",
                "| resource | kind | earliest start-finish s | actual start-finish s | calls | failed |",
                "|---|---|---|---|---|---|",
            ]
            lines += [
                f"| {s['resource']} | {s['kind']} | {s['earliest'][0]}-{s['earliest'][1]} "
                f"| {s['actual'][0]}-{s['actual'][1]} | {s['calls']} | {s['failed']} |"
                for s in c["path"]
            ]
            lines += [
                "",
                "Where time went beyond the model (largest first): `lag` is how long after its "
                "dependencies' last answer a resource's first call came, `stretch` how much longer "
                "its calls took than their modelled latencies (`!` marks a call that failed).",
                "",
                "| resource | lag s | stretch s | failed | calls (seconds from the first call) |",
                "|---|---|---|---|---|",
            ]
            lines += [
                f"| {w['resource']} | {w['lag_s']} | {w['stretch_s']} | {w['failed_calls']} | {' '.join(w['calls'])} |"
                for w in c["waits"][:12]
            ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipelines", default="1,10,50,100", help="stack sizes, comma-separated")
    parser.add_argument("--latency", default="seed=1", help="the emulator's latency model (tests/emulator/README.md)")
    parser.add_argument("--provider-dir", type=Path, help="directory of the provider binary (default: target/release, else target/debug)")
    parser.add_argument("--out", type=Path, default=ROOT / "target/bench/scale.md", help="where the Markdown report goes")
    args = parser.parse_args()
    provider = args.provider_dir or next(
        (d for d in (ROOT / "target/release", ROOT / "target/debug") if (d / "pulumi-resource-securepipeline").exists()),
        None,
    )
    if provider is None:
        raise SystemExit("build the provider first: cargo build --release -p pulumi-resource-securepipeline")
    plan = LatencyPlan.parse(args.latency)
    print(f"machine: {machine()}\nprovider: {provider}\nlatency model: {args.latency}\n")
    print(HEADER)
    print(RULE)
    results = []
    for size in (int(n) for n in args.pipelines.split(",")):
        emulator = Emulator(args.latency)
        try:
            results.append(bench(emulator, provider.resolve(), size, plan))
        finally:
            emulator.close()
    text = report(results, args.latency, provider)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    args.out.with_suffix(".json").write_text(
        json.dumps([{"pipelines": r.pipelines, "resources": r.resources, "critical": r.critical,
                     "steps": [vars(s) | {"provider": vars(s.provider), "engine": vars(s.engine)} for s in r.steps]}
                    for r in results], indent=2)
    )
    print()
    print(text)
    print(f"written to {args.out} and {args.out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
