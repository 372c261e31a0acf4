"""`python -m ditio_sandbox`: serve a sandbox tenant until SIGTERM or SIGINT.

Prints one JSON line with base_url, token_url, core_url, client_id and client_secret
(also written to `--url-file` when given), then serves; exits 0 on either signal.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from ditio_sandbox.sandbox import Sandbox
from ditio_sandbox.tenant import Tenant


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ditio_sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    parser.add_argument("--port", type=int, default=0, help="TCP port; 0 picks a free one")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--start", default="2026-04-12T06:00:00Z", help="first hour (UTC)")
    parser.add_argument("--hours", type=int, default=3)
    parser.add_argument("--parents-per-hour", type=int, default=12)
    parser.add_argument("--photos", type=Path, help="folder of real photos to serve")
    parser.add_argument("--file-bytes", type=int, help="make every original this many bytes")
    parser.add_argument("--hostile-names", action="store_true")
    parser.add_argument("--bad-rows", action="store_true")
    parser.add_argument("--redirect-files", action="store_true")
    parser.add_argument("--token-lifetime", type=int, default=1800)
    parser.add_argument("--forbidden-project", action="append", default=[])
    parser.add_argument("--client-id", default="sandbox")
    parser.add_argument("--client-secret", default="sandbox-secret")
    parser.add_argument("--url-file", type=Path, help="also write the JSON line here")
    parser.add_argument("--log-level", default="WARNING")
    return parser


def build_sandbox(args: argparse.Namespace) -> Sandbox:
    tenant = Tenant(
        seed=args.seed,
        start=args.start,
        hours=args.hours,
        parents_per_hour=args.parents_per_hour,
        photos_dir=args.photos,
        file_bytes=args.file_bytes,
        hostile_names=args.hostile_names,
        bad_rows=args.bad_rows,
    )
    return Sandbox(
        tenant,
        host=args.host,
        port=args.port,
        client_id=args.client_id,
        client_secret=args.client_secret,
        token_lifetime=args.token_lifetime,
        forbidden_projects=args.forbidden_project,
        redirect_files=args.redirect_files,
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr)
    try:
        sandbox = build_sandbox(args)
    except ValueError as err:
        print(f"ditio_sandbox: {err}", file=sys.stderr)
        return 2
    stopping = threading.Event()

    def request_stop(signum: int, frame: Any) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    with sandbox:
        line = json.dumps(sandbox.info())
        if args.url_file:
            # Write then rename, so a script polling for the file never reads half of it.
            partial = args.url_file.with_name(args.url_file.name + ".partial")
            partial.write_text(line + "\n", encoding="utf-8")
            partial.replace(args.url_file)
        print(line, flush=True)
        while not stopping.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
