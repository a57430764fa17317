"""The entry point gunicorn loads: `gunicorn server:app` (settings in gunicorn.conf.py)."""

from gateway_service import create_app
from mp3common.settings import SettingsError

try:
    app = create_app()
except SettingsError as exc:
    raise SystemExit(str(exc)) from None
