"""Two timings the tests once asserted, measured here instead (a loaded machine failed them).

1. GridFS upload rate as fs.chunks grows: the MongoDB stand-in (dev/mongo_server.py, fix 3)
   once compared every insert with every stored chunk, so the second of two equal 60 MiB
   uploads took ~3x the first. Target: second ≤ 1.5 x first.
2. Short jobs back to back through mp3common's Consumer: each ack must follow its handler
   at once, not at the consumer's next 1 s poll. Target: 20 jobs of 10 ms in ≤ 3 s.

tests/stack/test_mongo_wire.py and common/tests/test_amqp.py check what these stand for
(duplicates still refused in a large collection; every message acked, none left).
"""

from __future__ import annotations

import os
import random
import sys
import time
import uuid

import gridfs
from pymongo import MongoClient

from mp3common.amqp import Consumer, Outgoing, Publisher
from mp3testing import RABBITMQ_URL, RunningConsumer, delete_queues, queue_depth, wait_until

MiB = 1024 * 1024
MONGODB_URI = os.environ.get("MONGODB_URI", "mongodb://127.0.0.1:27017")
UPLOAD_BYTES = 60 * MiB
TARGET_UPLOAD_RATIO = 1.5
JOBS, JOB_SECONDS, TARGET_JOBS_SECONDS = 20, 0.01, 3.0


class RandomStream:
    """`size` pseudo-random bytes, handed out as read (never one object in memory)."""

    def __init__(self, size: int, seed: int) -> None:
        self._left = size
        self._rng = random.Random(seed)

    def read(self, n: int = -1) -> bytes:
        n = self._left if n is None or n < 0 else min(n, self._left)
        self._left -= n
        return self._rng.randbytes(n)


def upload_seconds() -> tuple[float, float]:
    client = MongoClient(MONGODB_URI, serverSelectionTimeoutMS=5000)
    name = f"mp3bench_{uuid.uuid4().hex[:10]}"
    try:
        bucket = gridfs.GridFSBucket(client[name])
        times = []
        for seed in (1, 2):
            started = time.perf_counter()
            bucket.upload_from_stream(f"upload-{seed}.mp4", RandomStream(UPLOAD_BYTES, seed))
            times.append(time.perf_counter() - started)
        return times[0], times[1]
    finally:
        client.drop_database(name)
        client.close()


def jobs_seconds() -> float:
    queue = f"bench.stores.{uuid.uuid4().hex[:10]}"
    out = f"{queue}.out"
    publisher = Publisher(RABBITMQ_URL, [queue, out])
    try:
        for n in range(JOBS):
            publisher.publish(queue, {"n": n})

        def quick(delivery, stopping):
            time.sleep(JOB_SECONDS)
            return [Outgoing(out, delivery.body)]

        consumer = Consumer(RABBITMQ_URL, queue, quick, publishes_to=[out])
        started = time.perf_counter()
        with RunningConsumer(consumer):
            assert wait_until(lambda: queue_depth(out) == JOBS, timeout=60, interval=0.01)
            return time.perf_counter() - started
    finally:
        publisher.close()
        delete_queues(queue, out)


def main() -> int:
    first, second = upload_seconds()
    jobs = jobs_seconds()
    out = sys.stdout.write
    out(f"MongoDB: {MONGODB_URI}\n")
    out(f"{'measure':<44} | {'value':>8} | target\n")
    ratio = second / first
    out(f"{'GridFS 60 MiB upload, first (s)':<44} | {first:8.2f} |\n")
    out(f"{'GridFS 60 MiB upload, second (s)':<44} | {second:8.2f} |\n")
    out(f"{'second / first':<44} | {ratio:8.2f} | ≤ {TARGET_UPLOAD_RATIO}\n")
    out(f"{f'{JOBS} jobs of {JOB_SECONDS * 1000:.0f} ms through a Consumer (s)':<44} | ")
    out(f"{jobs:8.2f} | ≤ {TARGET_JOBS_SECONDS}\n")
    met = ratio <= TARGET_UPLOAD_RATIO and jobs <= TARGET_JOBS_SECONDS
    out("targets met\n" if met else "TARGET MISSED\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
