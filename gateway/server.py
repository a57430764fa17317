"""The entry point gunicorn loads: `gunicorn server:app` (settings in gunicorn.conf.py)."""

from gateway_service import create_app
from mp3common.settings import SettingsError, refuse_to_start

try:
    app = create_app()
except SettingsError as exc:
    refuse_to_start(exc)
