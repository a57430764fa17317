"""Password hashing and tokens, done by libraries (argon2-cffi, pyjwt), nothing by hand.

The argon2 parameters are chosen with the login concurrency (slots.py) so that auth's peak
memory under any login flood stays inside its container limit: auth/README.md, "Memory
under a login flood", has the budget. Changing them here is enough to move every user
over: a hash made with other parameters still verifies (argon2 reads them from the hash)
and is replaced on its owner's next successful login (`needs_rehash`).
"""

from __future__ import annotations

import ctypes
import logging
import time

import argon2
import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

log = logging.getLogger(__name__)

ALGORITHM = "HS256"

#: argon2id as OWASP's Password Storage Cheat Sheet recommends first: 19 MiB, 2 passes,
#: 1 lane (~20 ms here). argon2-cffi's default (RFC 9106's low-memory profile: 64 MiB,
#: 3 passes, 4 lanes) cost 64 MiB per verify and ~110 ms: 8 gunicorn threads verifying at
#: once took a worker to 290 MB, past the pod's 256 Mi.
MEMORY_COST_KIB = 19 * 1024
TIME_COST = 2
PARALLELISM = 1

_hasher = PasswordHasher(time_cost=TIME_COST, memory_cost=MEMORY_COST_KIB, parallelism=PARALLELISM)
# Verified against when the email is unknown, so that an unknown email costs the same
# time and gets the same answer as a wrong password: no way to probe for accounts.
_DUMMY_HASH = _hasher.hash("not-a-real-password")

#: glibc's mallopt() parameter number for the mmap threshold (malloc.h).
_M_MMAP_THRESHOLD = -3


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with other parameters than today's (then it is replaced)."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return False


def memory_kib(password_hash: str | None) -> int:
    """The memory that checking this password costs: its hash's own argon2 memory (a hash
    from before verifies with the parameters it was made with), or today's when the check
    may also rehash it, whichever is larger."""
    try:
        own = argon2.extract_parameters(password_hash).memory_cost if password_hash else 0
    except InvalidHashError:
        own = 0
    return max(own, MEMORY_COST_KIB)


def return_argon2_memory_when_done() -> None:
    """Make every large block (argon2's 19 MiB) an mmap of its own, unmapped when freed.

    glibc raises its mmap threshold to the size of the largest block freed so far (up to
    32 MiB), so after the first verify a 19 MiB block comes from the calling thread's arena
    and stays there once freed: with 8 threads that is 8 x 19 MiB held for good, however
    few verify at once (measured: 165 MB with 2 verifying at a time). A fixed threshold
    turns that adjustment off; the process then holds argon2 memory only while it verifies.
    Not glibc (no mallopt): nothing to do.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    if mallopt(_M_MMAP_THRESHOLD, 1024 * 1024) != 1:
        log.warning("mallopt(M_MMAP_THRESHOLD) refused: argon2 memory may stay in the heap")


def issue_token(
    email: str, user_id: int, token_version: int, secret: str, lifetime_seconds: int
) -> str:
    """A token for the user's row `user_id` at its current `token_version`: /validate
    refuses it once the row is gone or its version moved on (a password change)."""
    now = int(time.time())
    claims = {
        "sub": email,
        "uid": user_id,
        "ver": token_version,
        "iat": now,
        "exp": now + lifetime_seconds,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode_token(token: str, secret: str) -> dict:
    """The token's claims; raises jwt.PyJWTError for anything but a valid HS256 token."""
    return jwt.decode(
        token,
        secret,
        algorithms=[ALGORITHM],
        options={"require": ["sub", "iat", "exp"]},
    )
