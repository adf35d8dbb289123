"""O(1)-per-message paths for moto's SQS, installed into the local cloud's own process.

Stock moto recomputes every queue attribute (three full scans with a datetime per message) on each
send, and finds a receipt handle by scanning every message on each delete, so it slows linearly with
queue length. Here standard queues get: cheap visibility checks, a receipt-handle index, a send path
that skips the attribute scans, and a receive path that stops at the first `count` visible messages.
FIFO queues and queues with Lambda event-source mappings keep moto's own code.

A `MessageListener` hears every send, receive, delete, dead-letter move and purge; the journal uses
it to keep queued messages across restarts. A send or a delete is journaled before it is applied: one
the journal cannot keep is answered 503 and not made (a client's retry then finds nothing half-done).
"""

from __future__ import annotations

import contextlib
import copy
import sqlite3
import time
from collections.abc import Callable
from typing import Any, Protocol

from moto.sqs import models as sqs_models
from moto.sqs.exceptions import InvalidParameterValue, ReceiptHandleIsInvalid
from moto.sqs.models import MAXIMUM_MESSAGE_DELAY, Message, Queue, SQSBackend
from werkzeug.exceptions import ServiceUnavailable

from backend.core.disk import full_disk, is_full


class MessageListener(Protocol):
    def on_send(self, queue: Queue, message: Message) -> None: ...
    def on_receive(self, queue: Queue, message: Message) -> None: ...
    def on_delete(self, queue: Queue, message: Message) -> None: ...
    def on_move(self, source: Queue, target: Queue, message: Message) -> None: ...
    def on_purge(self, queue: Queue) -> None: ...


class _NoListener:
    def on_send(self, queue: Queue, message: Message) -> None: ...
    def on_receive(self, queue: Queue, message: Message) -> None: ...
    def on_delete(self, queue: Queue, message: Message) -> None: ...
    def on_move(self, source: Queue, target: Queue, message: Message) -> None: ...
    def on_purge(self, queue: Queue) -> None: ...


_ORIGINAL: dict[str, Any] = {}


class JournalUnavailable(ServiceUnavailable):
    """The journal could not keep a send or delete: answered 503 (which clients retry), nothing changed."""

    def __init__(self, why: str) -> None:
        super().__init__(f"the local cloud could not journal this change ({why}); nothing was changed")


def _journaled(record: Callable[..., None], *args: Any) -> None:
    try:
        record(*args)
    except sqlite3.Error as exc:
        path = getattr(getattr(record, "__self__", None), "path", None)
        why = f"the disk is full: {full_disk(path)}" if is_full(exc) and path is not None else str(exc)
        raise JournalUnavailable(why) from None


def _now_ms() -> float:
    return time.time() * 1000.0


def _handles(queue: Queue) -> dict[str, Message]:
    index = queue.__dict__.get("_sd_handles")
    if index is None:
        index = queue.__dict__["_sd_handles"] = {}
    return index


def _is_fast(queue: Queue) -> bool:
    return not queue.fifo_queue and not queue.lambda_event_source_mappings


def install(listener: MessageListener | None = None) -> None:
    """Patch moto's SQS classes in this process. Idempotent; a later call replaces the listener."""
    sink: MessageListener = listener or _NoListener()
    if not _ORIGINAL:
        _ORIGINAL.update(
            send_message=SQSBackend.send_message,
            receive_message=SQSBackend.receive_message,
            change_message_visibility=SQSBackend.change_message_visibility,
            purge_queue=SQSBackend.purge_queue,
            queue_delete_message=Queue.delete_message,
        )
    orig = _ORIGINAL

    def visible(self: Message) -> bool:
        return _now_ms() > self.visible_at

    def delayed(self: Message) -> bool:
        return _now_ms() < self.delayed_until

    def messages(self: Queue) -> list[Message]:
        now = _now_ms()
        return [m for m in self._messages if now > m.visible_at and now >= m.delayed_until]

    def n_delayed(self: Queue) -> int:
        now = _now_ms()
        return sum(1 for m in self._messages if now < m.delayed_until)

    def n_not_visible(self: Queue) -> int:
        now = _now_ms()
        return sum(1 for m in self._messages if now <= m.visible_at)

    def n_visible(self: Queue) -> int:
        return len(messages(self))

    def send_message(
        self: SQSBackend,
        queue_name: str,
        message_body: str,
        message_attributes: Any = None,
        delay_seconds: Any = None,
        deduplication_id: Any = None,
        group_id: Any = None,
        system_attributes: Any = None,
        validate_group_id: bool = True,
    ) -> Message:
        queue = self.get_queue(queue_name)
        if not _is_fast(queue):
            message = orig["send_message"](
                self,
                queue_name,
                message_body,
                message_attributes,
                delay_seconds,
                deduplication_id,
                group_id,
                system_attributes,
                validate_group_id,
            )
            try:
                _journaled(sink.on_send, queue, message)
            except JournalUnavailable:
                with queue._messages_lock, contextlib.suppress(ValueError):
                    queue._messages.remove(message)  # moto's own path added it first: take it back
                raise
            return message
        delay = int(delay_seconds) if delay_seconds is not None else _queue_int(queue, "delay_seconds", 0)
        largest = _queue_int(queue, "maximum_message_size", 262144)
        if len(message_body) > largest:
            raise InvalidParameterValue(
                f"One or more parameters are invalid. Reason: Message must be shorter than {largest} bytes."
            )
        if delay > MAXIMUM_MESSAGE_DELAY:
            raise InvalidParameterValue(
                f"Value {delay} for parameter DelaySeconds is invalid. Reason: DelaySeconds must be >= 0 and <= 900."
            )
        message = Message(str(sqs_models.random.uuid4()), message_body, system_attributes)
        if message_attributes:
            message.message_attributes = message_attributes
        message.sent_timestamp = int(_now_ms())  # type: ignore[assignment]  # moto declares it None
        if delay:
            message.delayed_until = _now_ms() + delay * 1000
        _journaled(sink.on_send, queue, message)  # kept before it can be seen
        queue.add_message(message)
        return message

    def receive_message(
        self: SQSBackend,
        queue_name: str,
        count: int,
        wait_seconds_timeout: int,
        visibility_timeout: int,
        message_attribute_names: list[str] | None = None,
    ) -> list[Message]:
        queue = self.get_queue(queue_name)
        if not _is_fast(queue):
            return orig["receive_message"](
                self, queue_name, count, wait_seconds_timeout, visibility_timeout, message_attribute_names
            )
        names = message_attribute_names or []
        deadline = time.time() + (wait_seconds_timeout or 0)
        index = _handles(queue)
        redrive = queue.redrive_policy if queue.dead_letter_queue is not None else None
        retention_ms = _queue_int(queue, "message_retention_period", 345600) * 1000
        while True:
            result: list[Message] = []
            to_dlq: list[Message] = []
            expired: list[Message] = []
            now = _now_ms()
            with queue._messages_lock:
                for message in queue._messages:
                    if now <= message.visible_at or now < message.delayed_until:
                        continue
                    if message.sent_timestamp and now - message.sent_timestamp > retention_ms:
                        expired.append(message)
                        continue
                    if redrive and message.approximate_receive_count >= int(redrive["maxReceiveCount"]):
                        to_dlq.append(message)
                        continue
                    message.mark_received(visibility_timeout=visibility_timeout)
                    if message.receipt_handle is not None:  # mark_received has just set it
                        index[message.receipt_handle] = message
                    sink.on_receive(queue, message)
                    shown = copy.copy(message)
                    sqs_models._filter_message_attributes(shown, names)
                    result.append(shown)
                    if len(result) >= count:
                        break
                for message in to_dlq + expired:
                    queue._messages.remove(message)
            for message in expired:
                sink.on_delete(queue, message)
            dlq = queue.dead_letter_queue
            if dlq is not None:
                for message in to_dlq:
                    dlq.add_message(message)
                    sink.on_move(queue, dlq, message)
            if result or not wait_seconds_timeout or time.time() >= deadline:
                return result
            queue.wait_for_messages(max(0.05, min(1.0, deadline - time.time())))  # type: ignore[arg-type]  # a Condition wait: floats are fine

    def queue_delete_message(self: Queue, receipt_handle: str) -> None:
        if receipt_handle in self.deleted_messages:
            return
        message = _handles(self).get(receipt_handle)
        if message is None:
            before = {m.id: m for m in self._messages}
            orig["queue_delete_message"](self, receipt_handle)
            gone = set(before) - {m.id for m in self._messages}
            for mid in gone:
                sink.on_delete(self, before[mid])
            return
        _journaled(sink.on_delete, self, message)  # forgotten on disk before in memory
        with self._messages_lock, contextlib.suppress(ValueError):
            self._messages.remove(message)
        index = _handles(self)
        handles = [h for h in message.all_receipt_handles if h is not None]
        for handle in handles:
            index.pop(handle, None)
        self.deleted_messages.update(handles)
        self.pending_messages.discard(message)

    def change_message_visibility(
        self: SQSBackend, queue_name: str, receipt_handle: str, visibility_timeout: int
    ) -> None:
        queue = self.get_queue(queue_name)
        message = _handles(queue).get(receipt_handle)
        if message is None or message not in queue._messages:
            if message is None:
                return orig["change_message_visibility"](self, queue_name, receipt_handle, visibility_timeout)
            raise ReceiptHandleIsInvalid
        given = _now_ms() + int(visibility_timeout) * 1000
        if given - (message.sent_timestamp or 0) > 43200 * 1000:
            raise InvalidParameterValue(
                f"Value {visibility_timeout} for parameter VisibilityTimeout is invalid. Reason: Total "
                "VisibilityTimeout for the message is beyond the limit [43200 seconds]"
            )
        message.visible_at = given
        if message.visible:
            queue.pending_messages.discard(message)

    def purge_queue(self: SQSBackend, queue_name: str) -> None:
        orig["purge_queue"](self, queue_name)
        queue = self.get_queue(queue_name)
        _handles(queue).clear()
        sink.on_purge(queue)

    Message.visible = property(visible)  # type: ignore[assignment,method-assign]  # moto's class, patched in place
    Message.delayed = property(delayed)  # type: ignore[assignment,method-assign]  # moto's class, patched in place
    Queue.messages = property(messages)  # type: ignore[assignment,method-assign]  # moto's class, patched in place
    Queue.approximate_number_of_messages = property(n_visible)  # type: ignore[assignment,method-assign]  # moto's class, patched in place
    Queue.approximate_number_of_messages_delayed = property(n_delayed)  # type: ignore[assignment,method-assign]  # moto's class, patched in place
    Queue.approximate_number_of_messages_not_visible = property(n_not_visible)  # type: ignore[assignment,method-assign]  # moto's class, patched in place
    Queue.delete_message = queue_delete_message  # type: ignore[method-assign]  # moto's class, patched in place
    SQSBackend.send_message = send_message  # type: ignore[method-assign]  # moto's class, patched in place
    SQSBackend.receive_message = receive_message  # type: ignore[method-assign]  # moto's class, patched in place
    SQSBackend.change_message_visibility = change_message_visibility  # type: ignore[method-assign]  # moto's class, patched in place
    SQSBackend.purge_queue = purge_queue  # type: ignore[method-assign]  # moto's class, patched in place


def _queue_int(queue: Queue, attribute: str, default: int) -> int:
    """A queue attribute moto sets from the queue's attributes at creation (and so does not declare)."""
    return int(getattr(queue, attribute, None) or default)


def restore_message(
    queue: Queue, message_id: str, body: str, attributes: dict[str, Any], sent_ms: int, receive_count: int
) -> None:
    """Put a persisted message back into a queue without telling the listener (it is already stored)."""
    message = Message(message_id, body)
    message.message_attributes = attributes or {}
    message.sent_timestamp = sent_ms  # type: ignore[assignment]  # moto declares it None
    message.approximate_receive_count = receive_count
    with queue._messages_lock:
        queue._messages.append(message)
        queue._messages_lock.notify_all()


__all__ = ["MessageListener", "install", "restore_message"]
