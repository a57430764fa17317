"""Dev/test MongoDB stand-in: mongoeco's wire server on its in-memory engine.

No mongod binary is available on our machines, so for development and tests we
serve the MongoDB wire protocol with the PyPI package ``mongoeco`` (pinned in
``dev/requirements-mongo.txt``; it needs Python >= 3.13, hence its own venv)::

    python3.13 -m venv .venv-mongo
    .venv-mongo/bin/pip install -r dev/requirements-mongo.txt
    .venv-mongo/bin/python dev/mongo_server.py --host 127.0.0.1 --port 27017

Clients connect with ``mongodb://127.0.0.1:27017``. The storage is the
in-memory ``MemoryEngine`` (mongoeco's SQLite engine is far too slow for video
payloads), so all data is lost when the process stops. SIGTERM and SIGINT
close the listener and exit with status 0.

Four mongoeco 4.11.0 defects are patched at start (see ``patch_mongoeco``):

1. Cursor batches ignore mongod's 16 MiB limit. Without a client batchSize,
   mongoeco returns the whole result in ``firstBatch`` (and a ``getMore``
   without batchSize returns all the rest). Reading a GridFS file larger than
   ~45 MB then fails in pymongo with ``ProtocolError: Message length (...) is
   larger than server max message size (48000000)``. Like mongod, we cap each
   ``firstBatch``/``nextBatch`` at 16 MiB of BSON (always at least one
   document) and leave the rest to ``getMore``.
2. pymongo's ``MongoClient.server_info()`` sends the lower-case ``buildinfo``
   command, which mongoeco rejects as unsupported although it implements
   ``buildInfo``. We rename the command before dispatch.
3. Inserts scan the whole collection, so they get slower as it grows (GridFS
   uploads become quadratic: ~6 ms per chunk insert with ~800 chunks stored).
   ``MemoryEngine._ensure_unique_indexes`` compares the new document with every
   stored one (a) for ``_id`` on every single-document insert
   (``scan_payload_id``) and (b) for every unique *compound* index, such as
   GridFS's ``files_id_1_n_1`` on ``fs.chunks``; only single-field unique
   indexes use mongoeco's per-index hash map. See ``_patch_unique_checks``,
   which makes both lookups O(1) for the common cases.

4. ``hello`` never answers ``saslSupportedMechs``, so pymongo falls back to
   SCRAM-SHA-1, which mongoeco computes from the plain password where MongoDB uses
   ``md5("user:mongo:password")``: every login fails. Like mongod, we answer with
   SCRAM-SHA-256 (which mongoeco does as MongoDB does), so pymongo picks it. And
   ``saslStart`` looks the user up in ``admin`` whatever database the client
   authenticates against (the command reaches it without its ``$db``); we hand it over.

Users: ``--user NAME@DB:VAR[:ROLE]`` (repeatable) adds an account whose password is read
from the environment variable VAR (never from the command line, which ``ps`` shows). A
client that authenticates must give the right password (SCRAM-SHA-256/SHA-1, mongoeco's
own); a client that does not is still served, as by a mongod without ``--auth`` (the
tests' own helpers connect so). mongoeco keeps a user's roles but enforces none of them:
with ``--roles FILE`` (gateway/manifests/mongodb-init.js, the cluster's own roles) an
authenticated user with a ROLE may run a command only where that role grants its action,
as mongod with ``--auth`` would (``_authorize``): the development services and the images
connect as their own accounts, so a service that uses a collection its role does not name
fails on the dev stack, with "not authorized" and the command in its log.

Memory: mongoeco's codec stores ``Binary``/``bytes`` values as hex strings, so
stored GridFS data takes ~2x its size in RAM, plus ~1x more for documents that
have been read (the engine caches their decoded form). Not patched.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
from dataclasses import replace

import bson
from mongoeco.core.bson_scalars import is_bson_numeric
from mongoeco.engines.memory import MemoryEngine
from mongoeco.engines.virtual_indexes import document_in_virtual_index
from mongoeco.errors import OperationFailure
from mongoeco.wire import AsyncMongoEcoProxyServer, WireAuthUser
from mongoeco.wire._executor_handlers import WireSpecialCommandHandlers
from mongoeco.wire.auth import WireAuthenticationService
from mongoeco.wire.bson_bridge import encode_wire_value
from mongoeco.wire.cursors import WireCursorStore
from mongoeco.wire.executor import WireCommandExecutor
from mongoeco.wire.handshake import WireHandshakeService

log = logging.getLogger("mongo_server")

#: mongod's per-batch limit: a reply batch holds at most 16 MiB of documents.
MAX_BATCH_BYTES = 16 * 1024 * 1024

_COMMAND_ALIASES = {"buildinfo": "buildInfo"}


def _bson_size(document: object) -> int:
    try:
        return len(bson.encode(encode_wire_value(document)))
    except Exception:  # not encodable on its own: let mongoeco handle it as before
        return 0


def _docs_within_limit(documents: list[object], limit: int | None) -> int:
    """How many leading documents (at most ``limit``, at least one) fit in 16 MiB."""
    stop = len(documents) if not limit else min(limit, len(documents))
    total = 0
    for index in range(stop):
        total += _bson_size(documents[index])
        if total > MAX_BATCH_BYTES and index > 0:
            return index
    return stop


def _id_needs_equality_scan(value: object) -> bool:
    """Whether a stored ``_id`` may equal ``value`` without having its storage key.

    The memory engine stores documents under ``bson_engine_key(_id)`` but MongoDB
    compares ``_id`` with ``bson_equality_key``. The two keys differ only for
    numbers (``1 == 1.0 == Int64(1)``) and binary values (``bytes`` versus
    ``Binary`` subtype 0), also nested in sub-documents or arrays. For any other
    ``_id`` (ObjectId, str, datetime, UUID, ...) the storage-key lookup
    mongoeco already does is an exact duplicate check.
    """
    if isinstance(value, dict):
        return any(_id_needs_equality_scan(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return any(_id_needs_equality_scan(item) for item in value)
    return isinstance(value, (bytes, bytearray)) or is_bson_numeric(value)


def _patch_unique_checks() -> None:
    """Fix 3: O(1) ``_id`` and unique-index checks on insert/update/upsert.

    ``MemoryEngine._ensure_unique_indexes(..., scan_payload_id=...)`` runs before
    every write; it had two O(n) loops over the collection:

    (a) ``scan_payload_id`` (set for single-document inserts and upserts)
        compares ``bson_equality_key(_id)`` with every stored document, on top
        of the exact storage-key lookup. We turn it off when the candidate
        ``_id`` cannot differ from its storage key (``_id_needs_equality_scan``),
        i.e. for ObjectIds, strings, etc. Numeric or binary ``_id`` values keep
        the scan, so single writes with such ids stay O(n); an ``insertMany``
        with numeric ids also still collects all stored ids once per batch
        (``_insert_documents_impl``).
    (b) A unique index is checked via the engine's per-index hash map
        (``_index_data``: index key tuple -> storage keys, maintained by mongoeco
        itself on insert/update/delete, rollback, transactions, index builds and
        drops) only when it has a single field; compound unique indexes fall
        back to a full scan with ``_unique_index_conflict``. The maps of
        compound indexes are built from ``_index_keys``, which keeps only the
        first value of each field (so arrays are not expanded and a missing
        field differs from null), and nothing else reads them: the query
        planner only uses single-field indexes. We make ``_index_keys`` return
        exactly the keys the scan compares (``_unique_index_keys``: multikey
        expansion, missing == null) for compound indexes, and check compound
        unique indexes without collation by looking the candidate's keys up in
        that map, like mongoeco does for single-field ones. Indexes with a
        collation, or without a map, still use mongoeco's scan.

    The patch must be applied before the engine holds documents (we apply it
    before creating the ``MemoryEngine``), so every compound map is built with
    the new keys.
    """
    original_index_keys = MemoryEngine._index_keys
    original_ensure = MemoryEngine._ensure_unique_indexes

    def _index_keys(self, document, fields):
        if len(fields) > 1:
            return self._unique_index_keys(document, fields)
        return original_index_keys(self, document, fields)

    def _ensure_unique_indexes(
        self,
        db_name,
        coll_name,
        candidate,
        *,
        exclude_storage_key=None,
        indexes_view=None,
        storage_view=None,
        index_data_view=None,
        check_id_storage=False,
        scan_payload_id=False,
    ):
        if scan_payload_id and not _id_needs_equality_scan(candidate.get("_id")):
            scan_payload_id = False
        indexes = (
            (self._indexes if indexes_view is None else indexes_view)
            .get(db_name, {})
            .get(coll_name, [])
        )
        index_maps = (
            (self._index_data if index_data_view is None else index_data_view)
            .get(db_name, {})
            .get(coll_name, {})
        )
        hashed = [
            index
            for index in indexes
            if index.get("unique")
            and len(index["fields"]) > 1
            and index.get("collation") is None
            and index_maps.get(index["name"]) is not None
        ]
        call = {
            "exclude_storage_key": exclude_storage_key,
            "storage_view": storage_view,
            "index_data_view": index_data_view,
        }
        if not hashed:
            original_ensure(
                self,
                db_name,
                coll_name,
                candidate,
                indexes_view=indexes_view,
                check_id_storage=check_id_storage,
                scan_payload_id=scan_payload_id,
                **call,
            )
            return
        # _id first, then every index in mongoeco's order (so that the same error
        # wins when several apply), the hashed ones here, the others by mongoeco.
        original_ensure(
            self,
            db_name,
            coll_name,
            candidate,
            indexes_view={},
            check_id_storage=check_id_storage,
            scan_payload_id=scan_payload_id,
            **call,
        )
        coll = (
            (self._storage if storage_view is None else storage_view)
            .get(db_name, {})
            .get(coll_name, {})
        )
        exclude = exclude_storage_key  # normalized as in the original method
        if exclude is not None and exclude not in coll:
            exclude = self._storage_key(exclude)
        for index in indexes:
            if all(index is not h for h in hashed):
                only = {db_name: {coll_name: [index]}}
                original_ensure(self, db_name, coll_name, candidate, indexes_view=only, **call)
                continue
            if not document_in_virtual_index(candidate, index):
                continue
            self._validate_compound_multikey_shape(candidate, index)
            index_map = index_maps[index["name"]]
            for key in self._unique_index_keys(candidate, index["fields"]):
                matches = index_map.get(key)
                if matches and (exclude is None or any(m != exclude for m in matches)):
                    raise self._unique_key_error(
                        f"Duplicate key for unique index '{index['name']}': "
                        f"{index['fields']}={key!r}",
                        f"{db_name}.{coll_name}",
                        candidate,
                        index=index,
                        conflict=key,
                    )

    MemoryEngine._index_keys = _index_keys
    MemoryEngine._ensure_unique_indexes = _ensure_unique_indexes


def patch_mongoeco() -> None:
    """Apply the four fixes described in the module docstring (idempotent).

    Call it before creating the ``MemoryEngine`` (see ``_patch_unique_checks``).
    """
    if getattr(WireCursorStore, "_mp3converter_patched", False):
        return
    _patch_unique_checks()
    original_materialize = WireCursorStore.materialize_command_result
    original_get_more = WireCursorStore.get_more
    original_build_context = WireCommandExecutor._build_request_context

    def materialize_command_result(self, command_document, result, **kwargs):
        cursor = result.get("cursor") if isinstance(result, dict) else None
        batch = cursor.get("firstBatch") if isinstance(cursor, dict) else None
        if isinstance(batch, list) and batch:
            requested = self._resolve_batch_size(command_document)
            fit = _docs_within_limit(batch, requested)
            if fit < len(batch) and (not requested or fit < requested):
                # mongoeco slices firstBatch at batchSize and keeps the rest
                # for getMore; hand it the size-capped count instead.
                command_document = {**command_document, "batchSize": fit}
        return original_materialize(self, command_document, result, **kwargs)

    def get_more(self, command_document, **kwargs):
        state = self._state.get(command_document.get("getMore"))
        if state is not None and state.remaining_batch:
            requested = command_document.get("batchSize")
            valid = (
                isinstance(requested, int) and not isinstance(requested, bool) and requested >= 0
            )
            if requested is None or valid:  # invalid values: mongoeco raises as before
                fit = _docs_within_limit(state.remaining_batch, requested)
                if fit < len(state.remaining_batch) and (not requested or fit < requested):
                    command_document = {**command_document, "batchSize": fit}
        return original_get_more(self, command_document, **kwargs)

    def _build_request_context(self, body, **kwargs):
        if isinstance(body, dict) and body:
            first = next(iter(body))
            if first in _COMMAND_ALIASES:
                renamed = _COMMAND_ALIASES[first]
                body = {(renamed if key == first else key): value for key, value in body.items()}
        return original_build_context(self, body, **kwargs)

    original_hello = WireHandshakeService.build_hello_response

    def build_hello_response(self, *, command_name, body, connection):
        response = original_hello(self, command_name=command_name, body=body, connection=connection)
        if isinstance(body, dict) and "saslSupportedMechs" in body:
            response["saslSupportedMechs"] = ["SCRAM-SHA-256"]
        return response

    def with_database(handle):
        async def handler(self, context):
            document = {**context.command_document, "db": context.db_name}
            return await handle(self, replace(context, command_document=document))

        return handler

    WireHandshakeService.build_hello_response = build_hello_response
    WireSpecialCommandHandlers._handle_sasl_start = with_database(
        WireSpecialCommandHandlers._handle_sasl_start
    )
    WireCursorStore.materialize_command_result = materialize_command_result
    WireCursorStore.get_more = get_more
    WireCommandExecutor._build_request_context = _build_request_context
    WireCursorStore._mp3converter_patched = True


def _authorization_disabled(self, connection, command_name) -> None:
    """mongod without --auth: users can log in, but nobody has to."""


#: Each command the services send: the field naming its collection, and the actions
#: (MongoDB's privilege actions) it needs there.
_COMMAND_ACTIONS = {
    "find": ("find", ("find",)),
    "getMore": ("collection", ("find",)),
    "count": ("count", ("find",)),
    "distinct": ("distinct", ("find",)),
    "aggregate": ("aggregate", ("find",)),
    "insert": ("insert", ("insert",)),
    "update": ("update", ("update",)),
    "delete": ("delete", ("remove",)),
    "findAndModify": ("findAndModify", ("find", "update")),
    "createIndexes": ("createIndexes", ("createIndex",)),
    "listIndexes": ("listIndexes", ("listIndexes",)),
    "dropIndexes": ("dropIndexes", ("dropIndex",)),
    "drop": ("drop", ("dropCollection",)),
    "create": ("create", ("createCollection",)),
}
#: Commands mongod lets any authenticated user run (handshake, sessions, own cursors).
_NO_PRIVILEGE = {
    "hello", "isMaster", "ismaster", "ping", "buildInfo", "buildinfo", "saslStart",
    "saslContinue", "endSessions", "killCursors", "logout", "connectionStatus",
}  # fmt: skip


def load_roles(path: str) -> dict[str, dict[str, set[str]]]:
    """{role: {collection: actions}} from the JSON between mongodb-init.js's markers."""
    text = open(path, encoding="utf-8").read()
    begin, end = "/* roles:begin */", "/* roles:end */"
    table = json.loads(text[text.index(begin) + len(begin) : text.index(end)])
    return {role: {c: set(a) for c, a in grants.items()} for role, grants in table.items()}


def required_privileges(command: str, body: dict) -> set[tuple[str, str]] | None:
    """(collection, action) pairs the command needs; None for one that needs none."""
    if command in _NO_PRIVILEGE:
        return None
    if command not in _COMMAND_ACTIONS:
        return {(str(body.get(command, "")), f"<{command}>")}  # unknown: refused, named
    field, actions = _COMMAND_ACTIONS[command]
    collection = str(body.get(field, ""))
    needed = {(collection, action) for action in actions}
    if command == "findAndModify":
        if body.get("remove"):
            needed = {(collection, "find"), (collection, "remove")}
        if body.get("upsert"):
            needed.add((collection, "insert"))
    if command == "update" and any(u.get("upsert") for u in body.get("updates", [])):
        needed.add((collection, "insert"))
    if command == "aggregate":
        for stage in body.get("pipeline", []):
            lookup = stage.get("$lookup") if isinstance(stage, dict) else None
            if isinstance(lookup, dict) and "from" in lookup:
                needed.add((str(lookup["from"]), "find"))
    return needed


def _authorize(roles: dict[str, dict[str, set[str]]], context) -> None:
    """Refuse, as mongod does (code 13), what the connection's roles do not grant."""
    granted_roles = [r for r in context.connection.authenticated_roles if r.get("role") in roles]
    if not granted_roles:
        return  # not authenticated, or a user without one of these roles
    needed = required_privileges(context.command_name, context.command_document)
    if needed is None:
        return
    missing = set()
    for collection, action in needed:
        if not any(
            r.get("db") == context.db_name and action in roles[r["role"]].get(collection, ())
            for r in granted_roles
        ):
            missing.add(f"{action} on {collection}")
    if missing:
        users = ", ".join(str(u.get("user")) for u in context.connection.authenticated_users)
        raise OperationFailure(
            f"not authorized on {context.db_name} to execute command "
            f"{{ {context.command_name}: {context.command_document.get(context.command_name)!r} }} "
            f"as {users}: needs {', '.join(sorted(missing))}",
            code=13,
        )


def enforce_roles(roles: dict[str, dict[str, set[str]]]) -> None:
    original = WireCommandExecutor.execute_prepared

    async def execute_prepared(self, context):
        _authorize(roles, context)
        return await original(self, context)

    WireCommandExecutor.execute_prepared = execute_prepared


def parse_user(spec: str, environ=os.environ) -> WireAuthUser:
    """``NAME@DB:VAR[:ROLE]`` -> a user of database DB whose password is the variable VAR,
    with ROLE (default: readWrite, which the stand-in does not restrict)."""
    name, _, rest = spec.partition("@")
    database, _, rest = rest.partition(":")
    variable, _, role = rest.partition(":")
    if not (name and database and variable):
        raise argparse.ArgumentTypeError(f"--user wants NAME@DB:VAR[:ROLE], not {spec!r}")
    password = environ.get(variable)
    if not password:
        raise argparse.ArgumentTypeError(f"--user {spec}: the variable {variable} is not set")
    roles = ({"role": role or "readWrite", "db": database},)
    return WireAuthUser(username=name, password=password, source=database, roles=roles)


async def serve(
    host: str, port: int, users: tuple[WireAuthUser, ...] = (), roles: dict | None = None
) -> None:
    patch_mongoeco()
    WireAuthenticationService.require_authenticated = _authorization_disabled
    if roles:
        enforce_roles(roles)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    server = AsyncMongoEcoProxyServer(engine=MemoryEngine(), host=host, port=port, auth_users=users)
    address = await server.start()
    try:
        log.info(
            "mongoeco wire server (in-memory engine) listening on %s:%d, %d user(s)",
            address.host,
            address.port,
            len(users),
        )
        await stop.wait()
        log.info("shutting down")
    finally:
        await server.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=27017, help="TCP port (default 27017)")
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    parser.add_argument(
        "--user",
        action="append",
        default=[],
        type=parse_user,
        metavar="NAME@DB:VAR[:ROLE]",
        help="an account whose password is in the environment variable VAR (repeatable)",
    )
    parser.add_argument(
        "--roles",
        metavar="FILE",
        help="enforce the roles of this mongodb-init.js (the JSON between its markers)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    roles = load_roles(args.roles) if args.roles else None
    asyncio.run(serve(args.host, args.port, tuple(args.user), roles))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
