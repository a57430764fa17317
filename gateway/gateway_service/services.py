"""The long-lived clients of one gateway process, built once by create_app."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from .auth_client import AuthClient
from .publishing import JobPublisher
from .settings import Settings
from .storage import Storage


@dataclass(frozen=True)
class Services:
    auth: AuthClient
    storage: Storage
    publisher: JobPublisher

    @classmethod
    def build(cls, settings: Settings) -> Services:
        return cls(AuthClient(settings), Storage(settings), JobPublisher(settings))


def services() -> Services:
    return current_app.extensions["gateway"]
