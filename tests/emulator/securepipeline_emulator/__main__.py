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
    args = parser.parse_args()
    serve(args.port)


if __name__ == "__main__":
    main()
