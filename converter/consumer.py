"""The converter's entry point, as in the reference: `python -m consumer` from this folder
(the image runs `python consumer.py`; both are `mp3common.amqp.run_consumer`)."""

from converter_service import main

if __name__ == "__main__":
    main()
