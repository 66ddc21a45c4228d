"""One build carried through CodeBuild's phases on a thread of its own.

What follows a failed phase is CodeBuild's: by default a failed INSTALL or
PRE_BUILD ends the build, a failed BUILD still runs POST_BUILD, and
UPLOAD_ARTIFACTS is attempted after POST_BUILD whatever happened;
`on-failure: ABORT` ends the build at once and `CONTINUE` goes on to the
next phase. The build fails if any phase does.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..loopback import SessionCredentials
from . import artifacts, buildspec, environment
from .artifacts import ArtifactError
from .buildspec import Buildspec, BuildspecError, Phase
from .logs import BuildLog, LogStreamDenied
from .record import Build, PhaseRecord
from .shell import Shell, Stopped

if TYPE_CHECKING:
    from .runner import BuildRunner

# The phase context of a build ended early: by its timeout, or by StopBuild.
_STOP_CONTEXT = {
    "TIMED_OUT": ("BUILD_TIMED_OUT", "Build has timed out. "),
    "STOPPED": ("BUILD_STOPPED", "Build was stopped. "),
}
_COMMAND_PHASES = (
    ("install", "INSTALL"), ("pre_build", "PRE_BUILD"), ("build", "BUILD"), ("post_build", "POST_BUILD"),
)


class BuildRun:
    """The thread that carries one build through its phases."""

    def __init__(self, runner: BuildRunner, build: Build, token: str, session: SessionCredentials) -> None:
        self.runner = runner
        self.build = build
        self.plan = build.plan
        self.token = token
        self.session = session
        self.deadline = runner.clock() + self.plan.timeout_minutes * 60
        self.workspace = Path(tempfile.mkdtemp(prefix="codebuild-"))
        self.src_dir = self.workspace / "src" / "s3" / "00"
        self.succeeding = True
        logs = self.client("logs") if build.logs_enabled else None
        self.log = BuildLog(logs, build.log_group, build.log_stream)
        self.shell: Shell | None = None

    def client(self, service: str) -> Any:
        return self.runner.loopback.client(service, self.plan.region, self.session)

    def main(self) -> None:
        try:
            self.phases()
        except Exception as error:  # a fault of the emulator's: the build ends FAULT, never hangs
            traceback.print_exc(file=sys.stderr)
            self.log.container(f"internal error: {error}")
            self.finish("FAULT")
        finally:
            self.runner.credentials.revoke(self.token)
            self.kill()
            shutil.rmtree(self.workspace, ignore_errors=True)

    def kill(self) -> None:
        """Kill every process the build's commands started."""
        if self.shell is not None:
            self.shell.close()

    # ---------------------------------------------------------- phases --

    def phases(self) -> None:
        for phase_type in ("SUBMITTED", "QUEUED"):
            self.begin(phase_type)
            self.end("SUCCEEDED")
        self.begin("PROVISIONING")
        try:
            self.log.open()
        except LogStreamDenied as error:
            self.end("FAILED", "ACCESS_DENIED", self.log_denied_message(error))
            return self.finish("FAILED")
        self.log.container("Waiting for agent ping")
        self.end("SUCCEEDED")
        spec = self.download_source()
        if spec is None:
            return self.finish("FAILED")
        for key, phase_type in _COMMAND_PHASES:
            outcome = self.command_phase(phase_type, spec.phases.get(key))
            if outcome in ("STOPPED", "TIMED_OUT"):
                return self.finish(outcome)
            if outcome == "SUCCEEDED":
                continue
            on_failure = spec.phases[key].on_failure
            if on_failure == "ABORT" or (on_failure is None and key in ("install", "pre_build")):
                return self.finish("FAILED")
            if on_failure is None and key == "post_build":
                break
        self.export(spec)
        self.upload(spec)
        self.finish("SUCCEEDED" if self.succeeding else "FAILED")

    def begin(self, phase_type: str) -> None:
        self.build.phases.append(PhaseRecord(phase_type, time.time()))

    def end(self, status: str, code: str = "", message: str = "") -> None:
        phase = self.build.phases[-1]
        # Status and context before the end time: a reader that sees the
        # phase ended sees why.
        phase.status = status
        if code:
            phase.contexts.append({"statusCode": code, "message": self.log.masked(message)})
        phase.end = time.time()
        if status != "SUCCEEDED":
            self.succeeding = False
        if phase.phase_type not in ("SUBMITTED", "QUEUED", "PROVISIONING", "COMPLETED", "FINALIZING"):
            self.log.container(f"Phase complete: {phase.phase_type} State: {status}")
            if code:
                self.log.container(f"Phase context status code: {code} Message: {message}")

    def finish(self, status: str) -> None:
        if self.build.phases and self.build.phases[-1].end is None:
            self.end(status)
        self.begin("FINALIZING")
        self.log.container("Phase is FINALIZING")
        self.end("SUCCEEDED")
        self.log.flush()
        self.build.status = status
        self.build.end_time = time.time()
        self.begin("COMPLETED")
        self.build.done.set()

    def log_denied_message(self, error: LogStreamDenied) -> str:
        return (
            f"Service role {self.plan.service_role} does not allow AWS CodeBuild to create Amazon CloudWatch "
            f"Logs log streams for build {self.build.arn}. Error message: {error}"
        )

    # ------------------------------------------------ DOWNLOAD_SOURCE --

    def download_source(self) -> Buildspec | None:
        self.begin("DOWNLOAD_SOURCE")
        self.log.container("Phase is DOWNLOAD_SOURCE")
        s3 = self.client("s3") if self.plan.inputs else None
        sources: dict[str, Path] = {}
        try:
            for index, location in enumerate(self.plan.inputs):
                into = self.workspace / "src" / "s3" / f"{index:02d}"
                artifacts.download(s3, location, into)
                sources[location.name] = into
        except ArtifactError as error:
            self.end("FAILED", "CLIENT_ERROR", str(error))
            return None
        self.src_dir.mkdir(parents=True, exist_ok=True)
        self.log.container(f"CODEBUILD_SRC_DIR={self.src_dir}")
        for name, path in list(sources.items())[1:]:
            self.log.container(f"CODEBUILD_SRC_DIR_{name}={path}")
        try:
            spec = self.read_buildspec()
        except BuildspecError as error:
            self.end("FAILED", "YAML_FILE_ERROR", str(error))
            return None
        self.log.container("Processing environment variables")
        try:
            variables = self.variables(spec, sources)
        except environment.ResolveError as error:
            self.end("FAILED", error.status_code, error.message)
            return None
        home = self.workspace / "home"
        tmp = self.workspace / "tmp"
        home.mkdir()
        tmp.mkdir()
        (self.workspace / "state").mkdir()
        variables.update(HOME=str(home), TMPDIR=str(tmp))
        self.shell = Shell(self.workspace / "state", variables, self.src_dir, posix=spec.shell == "/bin/sh")
        self.end("SUCCEEDED")
        return spec

    def read_buildspec(self) -> Buildspec:
        text = self.plan.buildspec_text.strip()
        if "\n" not in text and not text.startswith("version"):
            path = self.src_dir / (text or "buildspec.yml")
            self.log.container(f"YAML location is {path}")
            if not path.is_file():
                raise BuildspecError("YAML file does not exist")
            text = path.read_text()
        return buildspec.parse(text)

    def variables(self, spec: Buildspec, sources: dict[str, Path]) -> dict[str, str]:
        """The build's environment, lowest precedence first: the image, the
        buildspec, the project, the start's overrides; CodeBuild's own last."""
        plain: dict[str, str] = dict(spec.variables)
        parameter_names: dict[str, str] = dict(spec.parameter_store)
        secret_refs: dict[str, str] = dict(spec.secrets_manager)
        declared = self.plan.project.get("environment", {}).get("environmentVariables", [])
        for variable in [*declared, *self.plan.overrides]:
            name, value, kind = variable["name"], variable["value"], variable.get("type", "PLAINTEXT")
            for table in (plain, parameter_names, secret_refs):
                table.pop(name, None)
            table = {"PARAMETER_STORE": parameter_names, "SECRETS_MANAGER": secret_refs}.get(kind, plain)
            table[name] = value
        if parameter_names:
            self.log.container("Decrypting parameter store environment variables")
        resolved = environment.parameters(self.client("ssm"), parameter_names) if parameter_names else {}
        if secret_refs:
            resolved.update(environment.secrets(self.client("secretsmanager"), secret_refs))
        for value in resolved.values():
            self.log.mask(value)
        build, plan = self.build, self.plan
        endpoint = self.runner.loopback.endpoint or ""
        own = {
            "CODEBUILD_BUILD_ARN": build.arn,
            "CODEBUILD_BUILD_ID": build.id,
            "CODEBUILD_BUILD_NUMBER": str(build.number),
            "CODEBUILD_BUILD_IMAGE": plan.project.get("environment", {}).get("image", ""),
            "CODEBUILD_BUILD_SUCCEEDING": "1",
            "CODEBUILD_INITIATOR": plan.initiator,
            "CODEBUILD_KMS_KEY_ID": plan.encryption_key or "",
            "CODEBUILD_LOG_PATH": build.log_stream,
            "CODEBUILD_PROJECT_ARN": build.project_arn,
            "CODEBUILD_RESOLVED_SOURCE_VERSION": plan.source_version or "",
            "CODEBUILD_SOURCE_VERSION": plan.source_version or "",
            "CODEBUILD_SRC_DIR": str(self.src_dir),
            "CODEBUILD_START_TIME": str(int(build.start_time * 1000)),
            "AWS_REGION": plan.region,
            "AWS_DEFAULT_REGION": plan.region,
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": self.runner.credentials.url(self.token),
            "AWS_ENDPOINT_URL": endpoint,
        }
        for name, path in list(sources.items())[1:]:
            own[f"CODEBUILD_SRC_DIR_{name}"] = str(path)
        return {
            "PATH": _host_path(),
            **self.runner.image_environment,
            **plain,
            **resolved,
            **own,
        }

    # ------------------------------------------------- command phases --

    def command_phase(self, phase_type: str, phase: Phase | None) -> str:
        """Run one phase; its status (SUCCEEDED, FAILED, STOPPED, TIMED_OUT)."""
        assert self.shell is not None
        self.begin(phase_type)
        reason = self.should_stop()
        if reason is not None:
            self.end(reason, *_STOP_CONTEXT[reason])
            return reason
        self.log.container(f"Entering phase {phase_type}")
        self.shell.set("CODEBUILD_BUILD_SUCCEEDING", "1" if self.succeeding else "0")
        failure: tuple[str, str] | None = None
        try:
            for command in phase.commands if phase else []:
                failure = self.command(command)
                if failure:
                    break
            for command in phase.finally_ if phase else []:
                failed = self.command(command)
                if failed:
                    failure = failure or failed
                    break
        except Stopped as stopped:
            self.end(stopped.reason, *_STOP_CONTEXT[stopped.reason])
            return stopped.reason
        if failure:
            self.end("FAILED", *failure)
            return "FAILED"
        self.end("SUCCEEDED")
        return "SUCCEEDED"

    def command(self, command: str) -> tuple[str, str] | None:
        """Run one command; None, or the status code and message of its failure."""
        assert self.shell is not None
        reason = self.should_stop()
        if reason is not None:
            raise Stopped(reason)
        self.log.container(f"Running command {command}")
        status = self.shell.run(command, self.log.output, self.tick)
        if status == 0:
            return None
        self.log.container(f"Command did not exit successfully {command} exit status {status}")
        reason = f"Error while executing command: {command}. Reason: exit status {status}"
        return "COMMAND_EXECUTION_ERROR", reason

    def tick(self) -> str | None:
        """Asked while a command runs: send pending log lines, and say
        whether the command must end."""
        self.log.flush_if_due()
        return self.should_stop()

    def should_stop(self) -> str | None:
        if self.build.stop_requested:
            return self.build.stop_requested
        if self.runner.clock() >= self.deadline:
            return "TIMED_OUT"
        return None

    # ------------------------------------------------------- outputs --

    def export(self, spec: Buildspec) -> None:
        assert self.shell is not None
        self.build.exported = [
            {"name": name, "value": self.shell.variable(name) or ""} for name in spec.exported_variables
        ]

    def upload(self, spec: Buildspec) -> None:
        self.begin("UPLOAD_ARTIFACTS")
        self.log.container("Phase is UPLOAD_ARTIFACTS")
        try:
            s3 = self.client("s3") if self.plan.outputs else None
            for location in self.plan.outputs:
                # One output is the buildspec's `artifacts`; several are its
                # `secondary-artifacts`, by the pipeline's artifact names.
                if len(self.plan.outputs) == 1:
                    chosen = spec.artifacts
                else:
                    chosen = spec.secondary_artifacts.get(location.name)
                if chosen is None:
                    raise ArtifactError(f"no artifact definition in the buildspec for output {location.name}")
                body = artifacts.package(chosen, self.src_dir)
                artifacts.upload(s3, location, body, self.plan.encryption_key)
                self.log.container(f"Uploaded {location.name} to s3://{location.bucket}/{location.key}")
        except ArtifactError as error:
            self.end("FAILED", "CLIENT_ERROR", str(error))
            return
        self.end("SUCCEEDED")


def _host_path() -> str:
    return os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin")
