"""python -m securepipeline_emulator --port N"""

from __future__ import annotations

import argparse

from .server import serve


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m securepipeline_emulator",
        description="Serve moto plus the emulator's extensions on 127.0.0.1.",
    )
    parser.add_argument(
        "--port", type=int, default=0, help="port to listen on; 0 picks a free one (default)"
    )
    parser.add_argument(
        "--enforce-iam",
        action="store_true",
        default=None,
        help="authorise calls made with AssumeRole credentials against IAM policies "
        "(default: off, or on when SECUREPIPELINE_ENFORCE_IAM=1)",
    )
    args = parser.parse_args()
    serve(args.port, args.enforce_iam)


if __name__ == "__main__":
    main()
