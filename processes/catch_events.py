"""What a waiting catch event listens for: messages (with their correlation keys), signals and timers.

A plain catch event (intermediate, boundary, receive task, event sub-process start) has one definition; an
event-based gateway holds the definitions of all the events after it (SpiffWorkflow moves them onto the
gateway), so it may wait for several messages and a timer at once: the first to happen wins, and because the
gateway then stops waiting, its other subscriptions are dropped with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition

from processes.runtime import evaluate, scoped
from processes.signals import SIGNAL, signal_names

if TYPE_CHECKING:
    from processes.instance import Instance

__all__ = ["definition_for", "prepare_subscriptions", "subscriptions_of", "waits_on_timer"]

SUBSCRIPTIONS = "subscriptions"


def _definitions(definition: Any) -> list[Any]:
    if isinstance(definition, MultipleEventDefinition):
        return list(definition.event_definitions)
    return [] if definition is None else [definition]


def waits_on_timer(definition: Any) -> bool:
    """Whether a catch event (or an event-based gateway) waits on a timer."""
    return any(isinstance(d, TimerEventDefinition) for d in _definitions(definition))


def prepare_subscriptions(instance: Instance, task: Any) -> None:
    """Resolve the messages an event-based gateway listens for (once, when it starts waiting); a single catch
    event's message is resolved by the engine itself (`message_name` and `correlation_key`)."""
    definition = getattr(task.task_spec, "event_definition", None)
    if not isinstance(definition, MultipleEventDefinition):
        return
    messages = [d for d in _definitions(definition) if isinstance(d, MessageEventDefinition)]
    if not messages or SUBSCRIPTIONS in task.internal_data:
        return
    variables = scoped(instance.variables, task)
    resolved: list[list[str | None]] = []
    for message in messages:
        name = str(evaluate(message.name, variables)) if message.name.startswith("=") else message.name
        key_expr = instance.model.correlation_keys.get(message.name)
        key = evaluate(key_expr, variables) if key_expr else None
        resolved.append([name, None if key is None else str(key)])
    task.internal_data[SUBSCRIPTIONS] = resolved


def subscriptions_of(task: Any) -> list[tuple[str, str]]:
    """The (message name, correlation key) pairs a waiting task listens for; a signal as (SIGNAL, its name)."""
    data = task.internal_data
    signals = [(SIGNAL, name) for name in signal_names(getattr(task.task_spec, "event_definition", None))]
    if data.get("correlation_key") is not None:
        return [(str(data.get("message_name")), str(data["correlation_key"])), *signals]
    return [*((str(name), str(key)) for name, key in data.get(SUBSCRIPTIONS, []) if key is not None), *signals]


def definition_for(task: Any, name: str) -> Any:
    """The event definition of a waiting task that a message with this (resolved) name is caught by."""
    definition = task.task_spec.event_definition
    if not isinstance(definition, MultipleEventDefinition):
        return definition
    messages = [d for d in definition.event_definitions if isinstance(d, MessageEventDefinition)]
    for message, (resolved, _key) in zip(messages, task.internal_data.get(SUBSCRIPTIONS, []), strict=False):
        if resolved == name:
            return message
    return messages[0]
