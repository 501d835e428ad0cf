"""The feedback body of ``POST /v1/models/{m}/feedback``: one label object, or ``{"feedback": [...]}`` of them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import msgspec

from driftline.errors import BadRequest
from driftline.feedback.targets import check_task, encode_target
from driftline.store.feedback import Feedback

if TYPE_CHECKING:
    from driftline.repository.model_config import Task

__all__ = ["WireFeedback", "decode_item", "one_key", "parse_feedback", "split_items"]


class WireFeedback(msgspec.Struct, forbid_unknown_fields=True):
    """One label as it arrives: ``id`` (with ``row``, default 0) or ``entity``, and the ``target``."""

    target: Any
    id: str | msgspec.UnsetType = msgspec.UNSET
    # Captured rows number their rows as int32.
    row: Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)] | msgspec.UnsetType = msgspec.UNSET
    entity: str | msgspec.UnsetType = msgspec.UNSET


_T = TypeVar("_T")
_OBJECT = msgspec.json.Decoder(dict[str, msgspec.Raw])
_ITEMS = msgspec.json.Decoder(list[msgspec.Raw])
_ITEM = msgspec.json.Decoder(WireFeedback)


def split_items(body: bytes, key: str, max_items: int) -> list[tuple[bytes | msgspec.Raw, str]]:
    """The items of a body that is one object, or ``{key: [...]}`` of up to ``max_items`` of them: each still
    undecoded, with the prefix its fields are named by (``""`` for a body of one object, ``key[3].`` in a list).

    The list's length is checked before any item is decoded (feedback and KPI bodies share this shape).

    Raises:
        BadRequest: not JSON, not an object, a field beside ``key``, ``key`` not a list, an empty or too long list.
    """
    try:
        top = _OBJECT.decode(body)
    except msgspec.DecodeError as exc:  # ValidationError included: the body is not an object
        raise BadRequest(f"{key} body: {exc}") from None
    if key not in top:
        return [(body, "")]
    if len(top) > 1:
        extra = sorted(k for k in top if k != key)
        raise BadRequest(f"{key} body: unknown field {extra[0]!r} beside {key!r}")
    try:
        raws = _ITEMS.decode(top[key])
    except msgspec.DecodeError as exc:
        raise BadRequest(f"{key}: {_detail(exc, key)}") from None
    if len(raws) > max_items:
        raise BadRequest(f"{key}: {len(raws)} items, more than the {max_items} one request may carry")
    if not raws:
        raise BadRequest(f"{key}: the list is empty")
    return [(raw, f"{key}[{i}].") for i, raw in enumerate(raws)]


def decode_item(decoder: msgspec.json.Decoder[_T], raw: bytes | msgspec.Raw, prefix: str, key: str) -> _T:
    """One item of :func:`split_items`, its errors naming the field from the body's top (``feedback[0].id``).

    Raises:
        BadRequest: an unknown or missing field, or one of the wrong type.
    """
    try:
        return decoder.decode(raw)
    except msgspec.DecodeError as exc:
        where = prefix.rstrip(".")
        raise BadRequest(f"{where or f'{key} body'}: {_detail(exc, where)}") from None


def parse_feedback(body: bytes, max_items: int, task: str) -> list[Feedback]:
    """The labels of a feedback body, each checked against the model's ``task``.

    The list's length is checked before any item is decoded. Every refusal names its field, as
    ``feedback[3].target`` (or ``target`` for a body of one object).

    Raises:
        BadRequest: not JSON, not an object, an unknown or missing field, a field of the wrong type, more than
            ``max_items`` items, an empty list, both or neither of id and entity, row with entity, a negative row,
            a target that does not fit the task.
    """
    kind = check_task(task)
    return [_item(raw, kind, prefix) for raw, prefix in split_items(body, "feedback", max_items)]


def one_key(has_id: bool, has_entity: bool, prefix: str, what: str) -> None:
    """Refuse an item that names both or neither of ``id`` and ``entity``.

    Raises:
        BadRequest: naming both fields.
    """
    if has_id == has_entity:
        which = "both" if has_id else "neither"
        raise BadRequest(f"{prefix}id, {prefix}entity: {what} names exactly one of the two, this has {which}")


def _item(raw: bytes | msgspec.Raw, task: Task, prefix: str) -> Feedback:
    wire = decode_item(_ITEM, raw, prefix, "feedback")
    has_id, has_entity = wire.id is not msgspec.UNSET, wire.entity is not msgspec.UNSET
    one_key(has_id, has_entity, prefix, "a label")
    if wire.row is not msgspec.UNSET and has_entity:
        raise BadRequest(f"{prefix}row: a label of an entity has no row (row goes with id)")
    target = encode_target(wire.target, task, f"{prefix}target")
    if isinstance(wire.entity, str):
        return Feedback(target=target, entity=wire.entity)
    rid = str(wire.id)  # set: has_id above
    return Feedback(target=target, request_id=rid, row=0 if wire.row is msgspec.UNSET else wire.row)


def _detail(exc: msgspec.DecodeError, base: str) -> str:
    """msgspec's message with its path spelled from ``base``: "at `$.id`" -> "at `feedback[0].id`" (or `id`)."""
    text = str(exc)
    return text.replace("`$.", "`") if not base else text.replace("`$", f"`{base}")
