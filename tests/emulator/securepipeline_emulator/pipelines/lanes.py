"""How executions share a pipeline's stages, by execution mode.

CodePipeline ("How pipeline executions work", CodePipeline User Guide):
- a stage holds one execution at a time (it is locked while the execution
  runs in it, and released when the execution completes or fails there);
- executions waiting for a locked stage wait in front of it;
- SUPERSEDED: a more recent execution arriving in front of a stage
  overtakes the one waiting there, which is superseded and goes no further;
- QUEUED: the waiting executions enter one by one, in the order they came;
- PARALLEL: stages are not locked; executions run independently.
"""

from __future__ import annotations

import threading

from .model import Execution

ENTERED = "entered"
SUPERSEDED = "superseded"
STOPPED = "stopped"


class Lanes:
    def __init__(self, mode: str) -> None:
        self.mode = mode
        self._cond = threading.Condition()
        self._holders: dict[str, Execution] = {}
        self._waiting: dict[str, list[Execution]] = {}
        # superseded execution id -> the execution that overtook it
        self._overtaken_by: dict[str, str] = {}

    def enter(self, stage: str, execution: Execution) -> str:
        """Wait until `execution` may run `stage`: ENTERED, or SUPERSEDED
        (overtaken while waiting) or STOPPED (asked to stop) when it may not
        go on."""
        if self.mode == "PARALLEL":
            return STOPPED if execution.stop is not None else ENTERED
        with self._cond:
            queue = self._waiting.setdefault(stage, [])
            if self.mode == "SUPERSEDED":
                newer = next((e for e in queue if e.seq > execution.seq), None)
                if newer is not None:
                    self._overtaken_by[execution.id] = newer.id
                    return SUPERSEDED
                for older in list(queue):
                    queue.remove(older)
                    self._overtaken_by[older.id] = execution.id
                self._cond.notify_all()
            queue.append(execution)
            while True:
                outcome = SUPERSEDED if execution.id in self._overtaken_by else None
                if outcome is None and execution.stop is not None:
                    outcome = STOPPED
                if outcome is not None:
                    if execution in queue:
                        queue.remove(execution)
                    self._cond.notify_all()
                    return outcome
                if stage not in self._holders and queue[0] is execution:
                    queue.pop(0)
                    self._holders[stage] = execution
                    return ENTERED
                self._cond.wait()

    def leave(self, stage: str, execution: Execution) -> None:
        if self.mode == "PARALLEL":
            return
        with self._cond:
            if self._holders.get(stage) is execution:
                del self._holders[stage]
            self._cond.notify_all()

    def wake(self) -> None:
        """Let waiting executions see a stop request."""
        with self._cond:
            self._cond.notify_all()

    def waiting(self, stage: str) -> list[Execution]:
        with self._cond:
            return list(self._waiting.get(stage, []))

    def overtaken_by(self, execution: Execution) -> str | None:
        with self._cond:
            return self._overtaken_by.get(execution.id)
