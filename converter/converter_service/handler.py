"""One `video` message → one job converted, failed, cancelled, or already handled.

The handler runs under `mp3common.amqp.Consumer`, which acks only after the messages it
returns are published and confirmed. Its guarantees:

* Converted: the output (the job's format) is in GridFS and the job `done`, with the
  time it expires (OUTPUT_RETENTION_SECONDS from now), before the `mp3` message is
  returned; the source video is deleted afterwards (unless KEEP_SOURCE_VIDEO).
* Unusable file: the job is `failed` with a reason for a person (its video kept for a
  retry until FAILED_VIDEO_RETENTION_SECONDS from now), and `PermanentError` carries the
  `mp3` message (state "failed") so the notifier mails the owner; the video message is
  then dead-lettered to `video.dlq`.
* Cancelled or deleted by its owner, before or while it converts (`job_watch.py`: the
  job is checked at least once a second): ffmpeg is killed, whatever of its output was
  stored is removed, and the message is acked with a log line: no failure, no
  dead-letter, no `mp3` message (the owner did it; no mail).
* Transient trouble (`mp3common.transient`: MongoDB or RabbitMQ unreachable, the disk,
  ffmpeg killed by a signal such as the out-of-memory killer's): an exception, so the
  message is requeued, up to the queue's delivery limit. On the last delivery
  (`Delivery.last_delivery`, from the limit the Consumer declared the queue with) the job
  is failed instead, so its owner hears of it rather than nothing.
* Any other error (a bug, a record nobody foresaw) is not retried: the job is failed at
  once with a reason for its owner, and the message dead-lettered, so it holds up nobody.
* A converter that dies on the last delivery cannot say anything: the broker dead-letters
  the message to `video.dlq`, where the reaper (`reaper.py`, in every converter process)
  fails the job and tells its owner.
* Stopped (SIGTERM) before it is done: `HandBack`, so the message goes back to the queue
  for another converter; a warning, not an error, and the job counts it as `handed_back`,
  neither a failed attempt nor a crash. On the last delivery the broker would dead-letter
  a handed-back message unseen, so the job is failed for its owner instead.
* Redelivered (a converter died, or its ack was lost): a finished job is not converted
  again. Its `mp3` message is sent again only while the owner has not been mailed; the
  notifier's claim on the job keeps that to one mail. A message for a job that was
  cancelled, or no longer exists (deleted), is acked with a log line.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

from bson import ObjectId
from pymongo.database import Database
from pymongo.errors import PyMongoError

from mp3common.amqp import Delivery, HandBack, Outgoing, PermanentError
from mp3common.jobs import DONE, FAILED, AttemptEnd, AudioTrack, Job, Jobs, now
from mp3common.messages import Mp3Message, VideoMessage
from mp3common.transient import transient

from . import metrics
from .extract_audio import Audio, extract_audio
from .failures import FfmpegKilled, Interrupted, UnusableMedia
from .ffmpeg_process import Timeouts
from .job_watch import Cancelled, JobWatch, withdrawn
from .settings import Settings
from .storage import Storage, VideoMissing

log = logging.getLogger(__name__)

WORK_DIR_PREFIX = "mp3conv-"
GAVE_UP = "the conversion service could not process it in time; please upload it again"
CRASHED = (
    "the video stopped the converter every time it was tried (it may be damaged or too "
    "demanding); try another export of it"
)
INTERNAL_ERROR = (
    "the conversion service failed on it with an unexpected error; please upload it again, "
    "and if that fails too, tell your administrator the file id"
)
KILLED = (
    "converting it was stopped by the machine every time it was tried (it may need more "
    "memory than the converter has); try a shorter or smaller export of it"
)
#: Attempts that ended in a crash (no word: killed, out of memory) before the last
#: delivery is spent on failing the job instead of trying once more.
CRASHES_BEFORE_GIVING_UP = 2


@dataclasses.dataclass(frozen=True)
class _Converted:
    """An attempt's output in its scratch folder, and what it took to make."""

    audio: Audio
    path: Path
    video_bytes: int
    ffmpeg_seconds: float


class JobHandler:
    def __init__(self, settings: Settings, database: Database) -> None:
        self.settings = settings
        self.jobs = Jobs(database)
        self.storage = Storage(database)
        self.timeouts = Timeouts(
            base_seconds=settings.ffmpeg_timeout_base_seconds,
            per_media_second=settings.ffmpeg_timeout_per_media_second,
            max_seconds=settings.ffmpeg_timeout_max_seconds,
        )

    def __call__(self, delivery: Delivery, stopping: threading.Event) -> list[Outgoing]:
        job_id = VideoMessage.parse(delivery.body).job_id
        try:
            return self._attempt(job_id, stopping, last_delivery=delivery.last_delivery)
        except Cancelled as exc:
            metrics.JOBS_WITHDRAWN.inc()
            log.info("%s: stopped, nothing stored or sent", exc)
            return []

    def _attempt(
        self, job_id: ObjectId, stopping: threading.Event, *, last_delivery: bool
    ) -> list[Outgoing]:
        try:
            return self._handle(job_id, stopping, last_delivery=last_delivery)
        except (PermanentError, Cancelled):
            raise
        except Interrupted as exc:
            if not last_delivery:
                self._note_attempt_end(job_id, AttemptEnd.HANDED_BACK)
                raise HandBack(f"job {job_id}: {exc}") from exc
            # Handed back now, it would be dead-lettered with nobody told.
            log.warning("job %s stopped on its last delivery; giving up", job_id)
            raise self._failed(job_id, GAVE_UP, kind="gave_up", detail=str(exc)) from exc
        except Exception as exc:
            if not transient(exc):
                # Trying again cannot help and would hold up every job behind this one.
                log.exception("job %s: an error not known to pass; failing it", job_id)
                raise self._failed(
                    job_id, INTERNAL_ERROR, kind="internal", detail=repr(exc)
                ) from exc
            if not last_delivery:
                self._note_attempt_end(job_id, AttemptEnd.FAILED)
                raise
            # The broker dead-letters it after this; tell the owner instead of nothing.
            log.exception("job %s failed on its last delivery; giving up", job_id)
            killed = isinstance(exc, FfmpegKilled)
            raise self._failed(
                job_id,
                KILLED if killed else GAVE_UP,
                kind="killed" if killed else "gave_up",
                detail=repr(exc),
            ) from exc

    # --- the steps ---------------------------------------------------------------------

    def _handle(
        self, job_id: ObjectId, stopping: threading.Event, *, last_delivery: bool
    ) -> list[Outgoing]:
        job = self.jobs.start(job_id)
        if job is None:
            return self._already_handled(job_id)
        crashes = job.crashed_attempts
        if last_delivery and crashes >= CRASHES_BEFORE_GIVING_UP:
            # Trying again would most likely stop this converter too, and then the broker
            # dead-letters the message with nobody told: fail it now, and say so.
            raise self._failed(
                job_id,
                CRASHED,
                kind="crashed",
                detail=f"{crashes} earlier attempts ended without a word",
            )
        log.info(
            "converting job %s (attempt %d, %s): %s",
            job_id,
            job.attempts,
            job.filename,
            job.options.summary(),
        )
        started = time.monotonic()
        watch = JobWatch(self.jobs, job_id, job.attempts)
        with tempfile.TemporaryDirectory(
            prefix=f"{WORK_DIR_PREFIX}{os.getpid()}-", dir=self.settings.work_dir
        ) as work:
            converted = self._convert(job, Path(work), watch, stopping)
            output_id = self._store(job, converted, watch)
        self._finish(job, output_id, converted.audio, watch)
        self._count_done(converted, time.monotonic() - started)
        if not self.settings.keep_source_video:
            self.storage.delete_video(job_id)
        finished = dataclasses.replace(job, state=DONE, mp3_fid=output_id, reason=None)
        return [self._mp3_message(finished)]

    def _convert(
        self, job: Job, work: Path, watch: JobWatch, stopping: threading.Event
    ) -> _Converted:
        """The video from GridFS into `work`, and ffmpeg's output from it."""
        video = work / "video"
        output = work / job.options.output.output_name("audio")
        try:
            size = self.storage.download_video(job.id, video, check=watch.report)
        except VideoMissing as exc:
            raise self._failed(
                job.id, "the uploaded file is no longer stored", kind="video_missing"
            ) from exc
        metrics.VIDEO_BYTES.inc(size)
        if stopping.is_set():
            raise Interrupted("stopping before the conversion started")
        ffmpeg_started = time.monotonic()
        try:
            audio = extract_audio(
                video,
                output,
                ffmpeg=self.settings.ffmpeg_binary,
                options=job.options,
                filename=job.filename,
                timeouts=self.timeouts,
                should_stop=_stop_after_grace(stopping, self.settings.stop_grace_seconds),
                on_progress=watch.report,
                max_media_seconds=self.settings.media_limit(job.max_media_seconds),
            )
        except UnusableMedia as exc:
            raise self._failed(job.id, exc.reason, kind=exc.kind, detail=exc.detail) from exc
        video.unlink()  # the disk a 1 GB video took is free before the upload
        return _Converted(audio, output, size, time.monotonic() - ffmpeg_started)

    def _store(self, job: Job, converted: _Converted, watch: JobWatch) -> ObjectId:
        """Upload the output (what earlier attempts left removed first); its id."""
        if job.attempts > 1 or job.mp3_uploads:  # a retried job may have earlier outputs
            self.storage.delete_earlier_attempts(job.id, job.attempts, job.mp3_uploads)
        output_id = ObjectId()
        self.jobs.note_mp3_upload(job.id, output_id)
        output = job.options.output
        self.storage.store_output(
            converted.path,
            output_id=output_id,
            job_id=job.id,
            attempt=job.attempts,
            filename=output.output_name(Path(job.filename or "audio").stem or "audio"),
            content_type=output.mime_type,
            check=watch.report,
        )
        return output_id

    def _finish(self, job: Job, output_id: ObjectId, audio: Audio, watch: JobWatch) -> None:
        """Mark the job done; Cancelled (its output removed) when it is no longer ours."""
        if not self.jobs.finish(
            job.id,
            mp3_fid=output_id,
            mp3_size=audio.size,
            duration_seconds=audio.duration_seconds,
            attempt=job.attempts,
            audio_track=_audio_track(audio),
            warning=audio.warning,
            copied=audio.copied,
            tags=audio.tags,
            cover=audio.cover,
            expires_at=self.settings.output_expiry(now()),
        ):
            self.storage.delete_output(output_id)
            raise watch.lost()
        log.info(
            "job %s done: %.1f s of %s (track %s%s, tags %s, cover %s)%s",
            job.id,
            audio.duration_seconds,
            job.options.format,
            audio.track.index if audio.track else "?",
            ", copied" if audio.copied else "",
            sorted(audio.tags),
            audio.cover,
            f"; {audio.warning}" if audio.warning else "",
        )

    def _count_done(self, converted: _Converted, job_seconds: float) -> None:
        metrics.JOBS_FINISHED.labels(DONE).inc()
        metrics.FFMPEG_SECONDS.observe(converted.ffmpeg_seconds)
        metrics.JOB_SECONDS.observe(job_seconds)
        metrics.MP3_BYTES.inc(converted.audio.size)

    def _already_handled(self, job_id: ObjectId) -> list[Outgoing]:
        """A redelivery of a finished job: report it again only if its owner wasn't told.
        A cancelled or deleted job: nothing to do (its owner did it)."""
        job = self.jobs.get(job_id)
        if gone := withdrawn(job_id, job):
            raise gone
        told = job.notified_at is not None
        log.info("job %s is already %s (owner mailed: %s)", job_id, job.state, told)
        if job.state == FAILED:
            raise PermanentError(
                f"job {job_id} failed earlier: {job.reason}",
                outgoing=[] if told else [self._mp3_message(job)],
            )
        if not self.settings.keep_source_video:
            self.storage.delete_video(job_id)  # in case the last attempt died before it
        return [] if told else [self._mp3_message(job)]

    def _note_attempt_end(self, job_id: ObjectId, how: AttemptEnd) -> None:
        """Best effort: MongoDB may be the very thing that is down."""
        try:
            self.jobs.note_attempt_end(job_id, how)
        except PyMongoError:
            log.warning("could not record how attempt at job %s ended", job_id)

    def _failed(
        self, job_id: ObjectId, reason: str, *, kind: str, detail: str = ""
    ) -> PermanentError | Cancelled:
        """Record the failure; the PermanentError that dead-letters it and tells the owner,
        or Cancelled when the job was cancelled or deleted meanwhile (nobody to tell)."""
        failed = self.jobs.fail(job_id, reason, expires_at=self.settings.video_expiry(now()))
        job = self.jobs.get(job_id)
        if gone := withdrawn(job_id, job):
            return gone
        log.warning("job %s failed: %s%s", job_id, reason, f" ({detail})" if detail else "")
        if failed:  # False if it was final already
            metrics.JOBS_FINISHED.labels(FAILED).inc()
            metrics.JOBS_FAILED.labels(kind).inc()
        return PermanentError(
            f"job {job_id} failed: {job.reason}", outgoing=[self._mp3_message(job)]
        )

    def _mp3_message(self, job: Job) -> Outgoing:
        return Outgoing(self.settings.mp3_queue, Mp3Message.for_job(job).body())


def _stop_after_grace(stopping: threading.Event, grace_seconds: float):
    """True once a stop was asked and the grace ran down: finish what fits, hand back the rest.

    The consumer hands the message back when its grace is over; ffmpeg is killed a little
    before that, so the worker is free by then.
    """
    deadline: list[float] = []

    def should_stop() -> bool:
        if not stopping.is_set():
            return False
        if not deadline:
            deadline.append(time.monotonic() + max(grace_seconds - 2.0, 0.0))
            log.info("stop requested: ffmpeg may run %.0f s more", grace_seconds - 2.0)
        return time.monotonic() >= deadline[0]

    return should_stop


def _audio_track(audio: Audio) -> AudioTrack | None:
    if audio.track is None:
        return None
    return AudioTrack(audio.track.index, audio.track.codec, audio.track.language)


def remove_stale_work_dirs(work_dir: str) -> int:
    """Delete the scratch folders of converters on this host that died (kill -9, OOM)."""
    removed = 0
    for folder in Path(work_dir).glob(f"{WORK_DIR_PREFIX}*"):
        try:
            pid = int(folder.name[len(WORK_DIR_PREFIX) :].split("-", 1)[0])
        except ValueError:
            continue
        if pid == os.getpid() or _alive(pid):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed += 1
    if removed:
        log.info("removed %d scratch folder(s) of converters that died", removed)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
