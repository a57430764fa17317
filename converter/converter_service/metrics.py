"""The converter's Prometheus metrics, served on METRICS_PORT (`mp3common.metrics.serve`).

A converter is one process, so these live in prometheus_client's default registry (which
also carries the process's CPU, memory and open files). Each job is counted once, when
its state becomes final: a redelivered job that was already finished counts nothing.
Times are of converted jobs only; a failed job shows in its failure kind, not in them.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

#: From a 3 s clip (0.05 s) to a 2 GB upload (minutes) to the 1 h ffmpeg time limit.
SECONDS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)

JOBS_FINISHED = Counter(
    "converter_jobs_finished_total", "Jobs this converter brought to a final state", ["state"]
)
JOBS_FAILED = Counter(
    "converter_jobs_failed_total",
    "Failed jobs by kind of failure (no_audio, not_media, damaged, timeout, gave_up, ...)",
    ["kind"],
)
FFMPEG_SECONDS = Histogram(
    "converter_ffmpeg_seconds",
    "Time ffmpeg took to write a job's MP3",
    buckets=SECONDS_BUCKETS,
)
JOB_SECONDS = Histogram(
    "converter_job_seconds",
    "Time from taking a job to its MP3 stored in GridFS and the job done",
    buckets=SECONDS_BUCKETS,
)
JOBS_WITHDRAWN = Counter(
    "converter_jobs_withdrawn_total",
    "Attempts stopped because their job was cancelled or deleted by its owner (or taken "
    "over by a later attempt): nothing stored or sent",
)
VIDEO_BYTES = Counter("converter_video_bytes_total", "Bytes of video read from GridFS")
MP3_BYTES = Counter(
    "converter_mp3_bytes_total", "Bytes of output (MP3 or another format) written to GridFS"
)

for _state in ("done", "failed"):  # both series exist from the start, at 0
    JOBS_FINISHED.labels(_state)
