"""The notification service's Prometheus metrics, served on METRICS_PORT (`mp3common.metrics`).

One process, so prometheus_client's default registry (with the process's CPU and memory).
Counted per SMTP attempt: a mail that needed two tries adds one `retry` failure and one
sent mail.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

MAILS_SENT = Counter("notification_mails_sent_total", "Mails the SMTP server accepted")
MAILS_FAILED = Counter(
    "notification_mails_failed_total",
    "SMTP attempts that failed: `retry` (unreachable, 4xx; tried again) or `permanent` (5xx)",
    ["reason"],
)
SEND_SECONDS = Histogram(
    "notification_send_seconds",
    "Time of one SMTP attempt: connect, TLS, login and the mail, answered or failed",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120),
)

for _reason in ("retry", "permanent"):  # both series exist from the start, at 0
    MAILS_FAILED.labels(_reason)
