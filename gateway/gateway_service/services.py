"""The long-lived clients of one gateway process, built once by create_app."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from .auth_client import AuthClient
from .publishing import JobPublisher
from .quotas import Quotas
from .settings import Settings
from .storage import Storage


@dataclass(frozen=True)
class Services:
    auth: AuthClient
    storage: Storage
    publisher: JobPublisher
    quotas: Quotas

    @classmethod
    def build(cls, settings: Settings) -> Services:
        storage = Storage(settings)
        return cls(AuthClient(settings), storage, JobPublisher(settings), Quotas(settings, storage))


def services() -> Services:
    return current_app.extensions["gateway"]
