"""The entry point, as in the reference: `python consumer.py` mails users until SIGTERM
(`mp3common.amqp.run_consumer`, as the converter's)."""

from mp3common.amqp import run_consumer
from notification_service import create_consumer

if __name__ == "__main__":
    run_consumer("notification", create_consumer)
