"""mp3c, mp3converter's command-line client (see cli.py for the commands and exit codes)."""

__version__ = "0.1.0"
