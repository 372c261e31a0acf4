"""Benchmark of the image sync against the sandbox API and a local S3, all on 127.0.0.1.

``python -m ditio_bench`` (``make bench``) measures download throughput, memory per file, the
scale of one busy interval, Airflow's share of an interval's wall time and the cost of a
re-run, each beside a baseline measured in the same run, and sweeps the tunables. The
sandbox API and the S3 server run as separate processes, and every measured worker is a
child process of its own. ``--smoke`` runs every scenario on tiny sizes.
"""
