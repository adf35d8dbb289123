"""Bring moto's SNS Publish closer to AWS: a MessageStructure other than `json` means a plain message.

AWS reads MessageStructure only when it is `json` (then the message is a JSON object of per-protocol
texts); any other value is sent as the plain text it is. moto refuses every value but `json`
("MessageStructure must be 'json' if provided"), which fails code that runs on AWS: the original
SDS-Inf worker publishes every batch entry with `MessageStructure: 'string'`.
"""

from __future__ import annotations

import functools
from typing import Any

from moto.sns.models import SNSBackend


def install() -> None:
    publish = SNSBackend.publish
    if getattr(publish, "_skydeck_plain_structure", False):
        return

    @functools.wraps(publish)
    def plain_unless_json(self: SNSBackend, *args: Any, **kwargs: Any) -> str:
        if kwargs.get("message_structure") not in (None, "json"):
            kwargs["message_structure"] = None
        return publish(self, *args, **kwargs)

    plain_unless_json._skydeck_plain_structure = True  # type: ignore[attr-defined]  # a marker on our own wrapper
    SNSBackend.publish = plain_unless_json  # type: ignore[method-assign]  # moto's class, patched in place
