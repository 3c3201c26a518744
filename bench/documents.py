"""Document upload throughput (MB/s) through our S3 storage adapter, beside the raw minio client's `put_object`
into the same server in the same run (target: >= 0.8x), plus what the upload confirm costs (reading the object back
through the hash and sniffer) and a browser-style presigned PUT.

Rounds interleave the two writers (raw, adapter, raw, adapter, ...) so a busy neighbour on the shared machine
hits both alike; the figures are medians over rounds.

    python bench/documents.py --quick
    python bench/documents.py --endpoint http://127.0.0.1:28333   # default: the S3 server infra/ runs
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from minio import Minio

from adapters.document_uploads import measure
from adapters.s3_storage import S3Storage
from adapters.scanning import NoScan
from bench.common import banner, table, verdict
from infra.s3 import S3Server

MIB = 1024 * 1024
TARGET = 0.8


def _mbps(size: int, seconds: float) -> float:
    return size / MIB / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="4 rounds of 2 x 8 MiB")
    parser.add_argument("--endpoint", default=None, help="S3 endpoint (default: infra's SeaweedFS)")
    parser.add_argument("--size-mib", type=int, default=None, help="object size")
    parser.add_argument("--rounds", type=int, default=None)
    args = parser.parse_args()
    size = (args.size_mib or (8 if args.quick else 32)) * MIB
    rounds = args.rounds or (4 if args.quick else 8)
    per_round = 2

    info = S3Server().info()
    endpoint = args.endpoint or info["endpoint"]
    bucket = f"cs-bench-{uuid.uuid4().hex[:8]}"
    raw = Minio(endpoint.split("://", 1)[1], access_key=info["access_key"], secret_key=info["secret_key"],
                secure=endpoint.startswith("https"), region=info["region"])
    ours = S3Storage(endpoint, info["access_key"], info["secret_key"], bucket, region=info["region"])
    ours.ensure_bucket()
    banner("document upload throughput", f"S3 {endpoint}, bucket {bucket}: {rounds} rounds x {per_round} objects "
                                         f"of {size // MIB} MiB per writer")
    data = os.urandom(size)
    # the first writes to a new bucket grow its volumes (slow on SeaweedFS): warm up outside the measurement
    raw.put_object(bucket, "warm/raw", io.BytesIO(data), size)
    ours.put("warm/ours", io.BytesIO(data), size, "application/octet-stream")

    timings: dict[str, list[float]] = {"raw put_object": [], "adapter put (known size)": [],
                                       "adapter put (unknown size)": [], "confirm read-back (hash+sniff)": [],
                                       "presigned PUT (httpx)": []}
    keys: list[str] = []
    for r in range(rounds):
        for kind in ("raw put_object", "adapter put (known size)", "adapter put (unknown size)",
                     "presigned PUT (httpx)"):
            started = time.perf_counter()
            for i in range(per_round):
                key = f"acme/bench/uploads/{r}-{i}-{kind.split()[0]}-{uuid.uuid4().hex[:6]}"
                keys.append(key)
                if kind == "raw put_object":
                    raw.put_object(bucket, key, io.BytesIO(data), size, content_type="application/octet-stream")
                elif kind == "adapter put (known size)":
                    ours.put(key, io.BytesIO(data), size, "application/octet-stream")
                elif kind == "adapter put (unknown size)":
                    ours.put(key, io.BytesIO(data), -1, "application/octet-stream")
                else:
                    url = ours.presign_put(key, timedelta(minutes=15))
                    assert httpx.put(url, content=data, timeout=120).status_code == 200
            timings[kind].append(_mbps(size * per_round, time.perf_counter() - started))
        started = time.perf_counter()
        for key in keys[-per_round:]:
            found = measure(ours, key, NoScan())
            assert found is not None and found.size == size
        timings["confirm read-back (hash+sniff)"].append(_mbps(size * per_round, time.perf_counter() - started))

    medians = {kind: statistics.median(values) for kind, values in timings.items()}
    base = medians["raw put_object"]
    table(["writer", "MB/s median", "min", "max", "x raw"], [
        [kind, medians[kind], min(values), max(values), medians[kind] / base] for kind, values in timings.items()
    ])
    for key in [*keys, "warm/raw", "warm/ours"]:
        raw.remove_object(bucket, key)
    raw.remove_bucket(bucket)
    ratio = medians["adapter put (known size)"] / base
    print(f"RATIO adapter/raw put_object = {ratio:.2f} (target >= {TARGET}): "
          f"{verdict(ratio, TARGET, higher_is_better=True)}")


if __name__ == "__main__":
    main()
