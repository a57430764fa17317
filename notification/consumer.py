"""The entry point, as in the reference: `python consumer.py` mails users until SIGTERM."""

import logging

from mp3common.settings import SettingsError
from notification_service import create_consumer

log = logging.getLogger("notification")


def main() -> None:
    try:
        consumer = create_consumer()
    except SettingsError as exc:
        raise SystemExit(str(exc)) from None
    consumer.install_signal_handlers()
    log.info("notification service starting")
    consumer.run()


if __name__ == "__main__":
    main()
