"""The entry point gunicorn loads: `gunicorn server:app` (settings in gunicorn.conf.py)."""

from gateway_service import create_app, refusals
from mp3common.settings import SettingsError, refuse_to_start

# gunicorn's own refusals (414, 431, a malformed request: 400) as JSON, like the app's.
refusals.install()
try:
    app = create_app()
except SettingsError as exc:
    refuse_to_start(exc)
