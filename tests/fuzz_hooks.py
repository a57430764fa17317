"""schemathesis hooks for tests/test_gateway_fuzz.py (loaded through SCHEMATHESIS_HOOKS).

A file of random bytes is a 415 by its content, so on its own the fuzz would never see an
upload taken. Half of the generated /upload forms get a real tiny file instead (FUZZ_MEDIA,
a short WAV made by ffmpeg): the 202, its body and its Location header are checked too.
"""

from __future__ import annotations

import os
from pathlib import Path

import schemathesis
from hypothesis import strategies as st

MEDIA = Path(os.environ["FUZZ_MEDIA"]).read_bytes() if os.environ.get("FUZZ_MEDIA") else None


@schemathesis.hook
def flatmap_body(context, body):
    operation = getattr(context, "operation", None)
    if MEDIA is None or operation is None or operation.path != "/upload":
        return st.just(body)
    # Only a form whose file is a string (as the document asks) is a valid one: a negative
    # case (the file a number, say) must stay as schemathesis made it, to be refused.
    if not isinstance(body, dict) or not isinstance(body.get("file"), (str, bytes)):
        return st.just(body)
    return st.sampled_from([body, {**body, "file": MEDIA}])


# tus's PATCH body (/uploads/{fid}) is raw bytes, sent as schemathesis sends any binary body.
schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")
