"""Whether an object is in S3, for the run starters and the per-worker files alike."""

from __future__ import annotations

from typing import Any


def object_exists(s3: Any, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return True
    except Exception:  # noqa: BLE001 - a 404 is a ClientError with no modelled type; any failure means no
        return False
