"""Child process: serve one benchmark tenant of the sandbox API until SIGTERM.

``python -m ditio_bench.sandbox_main --config JSON --url-file PATH`` builds a
:class:`~ditio_sandbox.Tenant` from the config (``huge_sizes``, a list of byte counts, turns
the tenant's first files into streamed originals of those sizes), serves it on a free
loopback port and writes the sandbox's URLs, credentials and the ids of those large files to
``PATH`` as one JSON object.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from ditio_sandbox import Sandbox, Tenant


def build_tenant(options: dict[str, Any]) -> tuple[Tenant, list[str]]:
    options = dict(options)
    sizes = [int(size) for size in options.pop("huge_sizes", [])]
    if "images_per_parent" in options:
        options["images_per_parent"] = tuple(options["images_per_parent"])
    tenant = Tenant(**options)
    if not sizes:
        return tenant, []
    huge_ids = tenant.file_ids()[: len(sizes)]
    if len(huge_ids) < len(sizes):
        raise ValueError(f"{len(sizes)} large files asked for, the tenant has {len(huge_ids)}")
    huge = dict(zip(huge_ids, sizes, strict=True))
    return Tenant(**options, huge_files=huge), huge_ids


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ditio_bench.sandbox_main")
    parser.add_argument("--config", required=True, help="JSON object of Tenant options")
    parser.add_argument("--url-file", type=Path, required=True)
    args = parser.parse_args(argv)

    tenant, huge_ids = build_tenant(json.loads(args.config))
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    with Sandbox(tenant, host="127.0.0.1", port=0, log_size=16) as sandbox:
        info = {
            **sandbox.info(),
            "files": len(tenant.file_ids()),
            "huge_file_ids": huge_ids,
        }
        partial = args.url_file.with_name(args.url_file.name + ".partial")
        partial.write_text(json.dumps(info), encoding="utf-8")
        partial.replace(args.url_file)
        while not stopping.wait(0.2):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
