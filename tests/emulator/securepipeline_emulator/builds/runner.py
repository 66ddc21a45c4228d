"""Builds of the projects the provider created, run as CodeBuild runs them.

A build assumes the project's service role as `codebuild.amazonaws.com`
(source ARN: the project), then runs on a thread of its own through
CodeBuild's phases: DOWNLOAD_SOURCE (input artifacts, the buildspec,
secrets), INSTALL, PRE_BUILD, BUILD, POST_BUILD (the buildspec's commands,
in a fresh working directory with a fresh HOME, as subprocesses of the
emulator), UPLOAD_ARTIFACTS, FINALIZING. Everything it does in AWS (reading
artifacts and secrets, writing logs and outputs) it does over loopback with
the role's session, so IAM enforcement decides it.
"""

from __future__ import annotations

import copy
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from moto.codebuild.models import codebuild_backends

from ..fixes.codebuild import DEFAULT_TIMEOUT_MINUTES, find_project
from ..fixes.codebuild import describe as describe_project
from ..loopback import Loopback
from ..wire import DEFAULT_ACCOUNT_ID, AwsError
from .artifacts import ArtifactLocation
from .credentials import ContainerCredentials
from .record import Build, Plan
from .run import BuildRun


class BuildRunner:
    """`app.builds`: starts builds and answers for them."""

    def __init__(self, loopback: Loopback, clock: Callable[[], float] = time.monotonic) -> None:
        self.loopback = loopback
        # Measures build timeouts; tests may make time pass faster.
        self.clock = clock
        self.credentials = ContainerCredentials(loopback)
        # What the build image provides: set through POST /_emulator/builds/environment.
        self.image_environment: dict[str, str] = {}
        self._builds: dict[str, Build] = {}
        self._running: dict[str, BuildRun] = {}
        self._numbers: dict[str, int] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------- interface --

    def start(
        self,
        *,
        region: str,
        project_name: str,
        initiator: str,
        inputs: list[ArtifactLocation],
        outputs: list[ArtifactLocation],
        environment_overrides: list[dict[str, str]] | None = None,
        encryption_key_arn: str | None = None,
        source_version: str | None = None,
    ) -> str:
        """Start a build the way CodePipeline's CodeBuild action does: the
        first input is the primary source; outputs are written to their
        locations encrypted with `encryption_key_arn` (or the project's
        key). The build id, `<project>:<uuid>`."""
        project = self.project(region, project_name)
        plan = Plan(
            project=project,
            region=region,
            initiator=initiator,
            inputs=list(inputs),
            outputs=list(outputs),
            overrides=list(environment_overrides or []),
            buildspec_text=project.get("source", {}).get("buildspec", ""),
            encryption_key=encryption_key_arn or project.get("encryptionKey"),
            source_version=source_version,
            timeout_minutes=project.get("timeoutInMinutes", DEFAULT_TIMEOUT_MINUTES),
            service_role=project["serviceRole"],
            logs_config=project.get("logsConfig", {}),
        )
        return self.launch(plan)

    def get(self, build_id: str) -> dict[str, Any]:
        """The build exactly as BatchGetBuilds shows it."""
        return self.find(build_id).view()

    def wait(self, build_id: str, timeout_s: float) -> dict[str, Any]:
        """The build once its buildStatus is final, or as it is when
        `timeout_s` runs out."""
        build = self.find(build_id)
        build.done.wait(timeout_s)
        return build.view()

    def stop(self, build_id: str) -> dict[str, Any]:
        """StopBuild: the running command is killed and the build ends
        STOPPED; the build as it is when asked."""
        build = self.find(build_id)
        if not build.done.is_set():
            build.stop_requested = "STOPPED"
        return build.view()

    # --------------------------------------------------------- helpers --

    def project(self, region: str, name: str) -> dict[str, Any]:
        found = find_project(codebuild_backends[DEFAULT_ACCOUNT_ID][region], name)
        if found is None:
            arn = f"arn:aws:codebuild:{region}:{DEFAULT_ACCOUNT_ID}:project/{name}"
            raise AwsError("ResourceNotFoundException", f"Project cannot be found: {arn}")
        # A copy: a build keeps the project as it was when it started.
        return copy.deepcopy(describe_project(found))

    def find(self, build_id: str) -> Build:
        with self._lock:
            build = self._builds.get(build_id)
        if build is None:
            raise AwsError("ResourceNotFoundException", f"Build {build_id} does not exist")
        return build

    def builds_of(self, project_name: str, region: str) -> list[Build]:
        with self._lock:
            return [
                b
                for b in self._builds.values()
                if b.plan.project["name"] == project_name and b.plan.region == region
            ]

    def all_builds(self, region: str) -> list[Build]:
        with self._lock:
            return [b for b in self._builds.values() if b.plan.region == region]

    def launch(self, plan: Plan) -> str:
        """Assume the role (InvalidInputException when CodeBuild may not, as
        StartBuild answers) and run the build on a thread of its own."""
        name = plan.project["name"]
        build_uuid = str(uuid.uuid4())
        try:
            token, session = self.credentials.issue(
                plan.service_role, f"AWSCodeBuild-{build_uuid}", plan.project["arn"]
            )
        except AwsError as error:
            raise AwsError(
                "InvalidInputException",
                f"CodeBuild is not authorized to perform: sts:AssumeRole on {plan.service_role}",
            ) from error
        with self._lock:
            number = self._numbers.get(name, 0) + 1
            self._numbers[name] = number
            build = Build(plan, f"{name}:{build_uuid}", number)
            self._builds[build.id] = build
        run = BuildRun(self, build, token, session)
        with self._lock:
            self._running[build.id] = run
        threading.Thread(target=self._run, args=(run,), name=f"build {build.id}", daemon=True).start()
        return build.id

    def _run(self, run: BuildRun) -> None:
        try:
            run.main()
        finally:
            with self._lock:
                self._running.pop(run.build.id, None)

    def shutdown(self) -> None:
        """Stop every running build and kill what its commands started: the
        emulator is exiting, and build threads die with it."""
        with self._lock:
            running = list(self._running.values())
        for run in running:
            run.build.stop_requested = "STOPPED"
            run.kill()

