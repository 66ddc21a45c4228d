"""python -m securepipeline_emulator --port N [--faults SPEC] [--latency SPEC] [--enforce-iam]"""

from __future__ import annotations

import argparse
import os

from .faults import FaultPlan, FaultSpecError
from .latency import LatencyPlan, LatencySpecError
from .server import serve

FAULTS_ENV = "SECUREPIPELINE_EMULATOR_FAULTS"
LATENCY_ENV = "SECUREPIPELINE_EMULATOR_LATENCY"


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m securepipeline_emulator",
        description="Serve moto plus the emulator's extensions on 127.0.0.1.",
    )
    parser.add_argument(
        "--port", type=int, default=0, help="port to listen on; 0 picks a free one (default)"
    )
    parser.add_argument(
        "--faults",
        default=os.environ.get(FAULTS_ENV, ""),
        metavar="SPEC",
        help=f"fail calls as AWS does, e.g. rate=0.2,seed=7 (default: ${FAULTS_ENV}; see README)",
    )
    parser.add_argument(
        "--latency",
        default=os.environ.get(LATENCY_ENV, ""),
        metavar="SPEC",
        help="answer as slowly as AWS, throttle above its request rates and propagate new "
        f"roles, keys and topics with a delay, e.g. seed=1 (default: ${LATENCY_ENV}; see README)",
    )
    parser.add_argument(
        "--enforce-iam",
        action="store_true",
        default=None,
        help="authorise calls made with AssumeRole credentials against IAM policies "
        "(default: off, or on when SECUREPIPELINE_ENFORCE_IAM=1)",
    )
    args = parser.parse_args()
    try:
        plan = FaultPlan.parse(args.faults)
    except FaultSpecError as error:
        parser.error(f"--faults: {error}")
    try:
        latency = LatencyPlan.parse(args.latency)
    except LatencySpecError as error:
        parser.error(f"--latency: {error}")
    serve(args.port, plan, args.enforce_iam, latency)


if __name__ == "__main__":
    main()
