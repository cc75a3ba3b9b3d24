"""Run the sandbox world: `python -m mini_program_mock --port 8100 --data-dir var/sandbox`."""
from __future__ import annotations

import argparse
import logging
import os

from werkzeug.serving import run_simple

from .server import create_sandbox_app


def main() -> None:
    parser = argparse.ArgumentParser(prog="mini_program_mock", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("SANDBOX_PORT", "8100")))
    parser.add_argument("--data-dir", default=os.environ.get("SANDBOX_DATA_DIR", "var/sandbox"))
    parser.add_argument("--time-scale", type=float, default=float(os.environ.get("SANDBOX_TIME_SCALE", "1")),
                        help="multiply the channels' retry schedules (0.001 runs a day in ~90 s)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s sandbox %(levelname)s %(message)s")
    app = create_sandbox_app(args.data_dir, args.time_scale, f"http://{args.host}:{args.port}")
    run_simple(args.host, args.port, app, threaded=True, use_reloader=False)


if __name__ == "__main__":
    main()
