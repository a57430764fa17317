"""Password hashing and tokens, done by libraries (argon2-cffi, pyjwt), nothing by hand."""

from __future__ import annotations

import time

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

ALGORITHM = "HS256"

_hasher = PasswordHasher()
# Verified against when the email is unknown, so that an unknown email costs the same
# time and gets the same answer as a wrong password: no way to probe for accounts.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def issue_token(email: str, secret: str, lifetime_seconds: int) -> str:
    now = int(time.time())
    claims = {"sub": email, "iat": now, "exp": now + lifetime_seconds}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode_token(token: str, secret: str) -> dict:
    """The token's claims; raises jwt.PyJWTError for anything but a valid HS256 token."""
    return jwt.decode(
        token,
        secret,
        algorithms=[ALGORITHM],
        options={"require": ["sub", "iat", "exp"]},
    )
