"""What happens to an instance when a job finishes, a timer fires, a message arrives or compensation runs.

Each function changes the in-memory workflow (under the engine's lock) and returns or commits the step's
events; the engine saves them as one `RecordProcessStep` command.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from SpiffWorkflow.bpmn.util import BpmnEvent
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from processes.incidents import raise_incident
from processes.instance import Instance
from processes.jobs import Completed, Failed, Job, JobOutcome, Thrown

if TYPE_CHECKING:
    from processes.engine import EmbeddedEngine

Step = list[tuple[str, dict[str, Any]]]
COMPENSATION = "comp:"
RETRY = "retry:"


def _initial_retries(engine: EmbeddedEngine, instance: Instance, ref: str) -> int:
    if ref.startswith(COMPENSATION):
        activity = _compensation_parts(ref)[2]
        handler = instance.model.compensation.get(activity)
        return handler.retries if handler else 3
    task = instance.task(UUID(ref))
    retries = str(getattr(task.task_spec, "retries", None) or "3") if task else "3"
    return int(retries) if retries.isdigit() else 3


def _compensation_parts(ref: str) -> tuple[str, str, str]:
    throw_id, activity_task_id, activity = ref[len(COMPENSATION):].split(":", 2)
    return throw_id, activity_task_id, activity


def _failed(engine: EmbeddedEngine, instance: Instance, ref: str, job: Job, outcome: Failed) -> Step:
    initial = _initial_retries(engine, instance, ref)
    base = {"element_id": job.element_id, "job_type": job.type, "message": outcome.message[:2000]}
    if outcome.retries > 0:
        retry_at = (engine._now() + engine.retry_delay(outcome.retries, initial)).isoformat()
        instance.set_job(ref, {"retries": outcome.retries, "retry_at": retry_at})
        return [("JobFailed", {**base, "retries_left": outcome.retries, "retry_at": retry_at})]
    instance.set_job(ref, {"retries": 0, "incident": True})
    return [("JobFailed", {**base, "retries_left": 0}),
            raise_incident(instance, "job", job.element_id,
                           f"job {job.type} failed and has no retries left: {outcome.message}", ref=ref,
                           job_type=job.type)]


def apply_outcome(engine: EmbeddedEngine, instance: Instance, ref: str, job: Job, outcome: JobOutcome) -> Step:
    """The step a finished job causes (empty when its task was cancelled meanwhile, e.g. by a boundary timer)."""
    if ref.startswith(COMPENSATION):
        return _compensation_outcome(engine, instance, ref, job, outcome)
    task = instance.task(UUID(ref))
    if task is None or task.state != TaskState.STARTED:
        instance.set_job(ref, None)
        return []
    element = task.task_spec.name
    if isinstance(outcome, Failed):
        return _failed(engine, instance, ref, job, outcome)
    instance.set_job(ref, None)
    if isinstance(outcome, Completed):
        instance.merge_result(element, dict(outcome.variables), task=task)
        engine._advance(instance, task.complete)
        return [("ProcessAdvanced", {"cause": "job-completed", "element_id": element})]
    assert isinstance(outcome, Thrown)
    instance.merge_result(element, dict(outcome.variables), outputs=[], task=task)
    caught = engine.throw_error(instance, task, outcome.code)
    step: Step = [("BpmnErrorThrown", {"element_id": element, "code": outcome.code,
                                       "message": outcome.message[:2000], "caught_by": caught})]
    if caught is None:
        instance.set_job(ref, {"retries": 0, "incident": True})
        step.append(raise_incident(instance, "bpmn-error", element, f"BPMN error {outcome.code!r} was not caught",
                                   ref=ref, job_type=job.type))
    else:
        engine._advance(instance)
    return step


def fire_timer(engine: EmbeddedEngine, instance: Instance, ref: str, now: datetime,
               effects: list[Callable[[], None]]) -> bool:
    """Fire one due timer (or hand a job whose back-off is over to the workers); True if something fired."""
    if ref.startswith(RETRY):
        job_ref = ref[len(RETRY):]
        if job_ref.startswith(COMPENSATION):
            throw = instance.task(UUID(_compensation_parts(job_ref)[0]))
            if throw is not None:
                offer_compensation(engine, instance, throw)
        else:
            task = instance.task(UUID(job_ref))
            if task is not None and task.state == TaskState.STARTED:
                engine._offer_job(instance, job_ref, engine._service_job(instance, task))
        return True
    task = instance.task(UUID(ref))
    if task is None or task.state != TaskState.WAITING:
        return False
    engine._advance(instance, lambda: task.task_spec._update(task))
    name = task.task_spec.name
    engine._commit(instance, [("TimerFired", {"element_id": name, "element_name": instance.model.name_of(name)})],
                   effects)
    return True


def deliver_message(engine: EmbeddedEngine, instance: Instance, task: Task, variables: dict[str, Any],
                    effects: list[Callable[[], None]], definition: Any = None) -> None:
    """Correlate a message to a waiting catch event (intermediate, boundary or receive task)."""
    spec = task.task_spec
    name, key = task.internal_data.get("message_name", ""), task.internal_data.get("correlation_key", "")
    spec.catch(task, BpmnEvent(definition or spec.event_definition, payload={}))  # a gateway: the one caught
    instance.merge_result(spec.name, variables, task=task)
    engine._advance(instance, lambda: spec._update(task))
    engine._commit(instance, [("MessageCorrelated", {"element_id": spec.name, "name": name,
                                                      "correlation_key": key or ""})], effects)


# ------------------------------------------------------------------------------------------ compensation

def plan_compensation(instance: Instance) -> Step:
    """For compensation throw events that just started: list what to undo (newest first), or finish at once."""
    events: Step = []
    plans = dict(instance.extra.get("comp", {}))
    done = set(instance.extra.get("compensated", []))
    for task in list(instance.all_tasks(TaskState.STARTED)):
        name = task.task_spec.name
        if name not in instance.model.compensation_throws or str(task.id) in plans:
            continue
        only = instance.model.compensation_throws[name]
        completed = [t for t in task.workflow.tasks.values()
                     if t.state == TaskState.COMPLETED and t.task_spec.name in instance.model.compensation
                     and (only is None or t.task_spec.name == only) and str(t.id) not in done]
        completed.sort(key=lambda t: t.last_state_change, reverse=True)
        plan = [[str(t.id), t.task_spec.name] for t in completed]
        plans[str(task.id)] = plan
        events.append(("CompensationStarted", {"element_id": name, "activities": [a for _, a in plan]}))
        if not plan:
            task.complete()
    if events:
        instance.set_extra("comp", plans)
    return events


def offer_compensation(engine: EmbeddedEngine, instance: Instance, throw: Task) -> None:
    """Hand the next compensation handler of a waiting compensation event to the workers."""
    plan = instance.extra.get("comp", {}).get(str(throw.id), [])
    if not plan or throw.state != TaskState.STARTED:
        return
    activity_task_id, activity = plan[0]
    handler = instance.model.compensation[activity]
    ref = f"{COMPENSATION}{throw.id}:{activity_task_id}:{activity}"
    job = engine._job(instance, ref, handler.element_id, handler.task_type,
                      handler.extensions.get("taskHeaders", {}), handler.retries)
    engine._offer_job(instance, ref, job)


def _compensation_outcome(engine: EmbeddedEngine, instance: Instance, ref: str, job: Job,
                          outcome: JobOutcome) -> Step:
    throw_id, activity_task_id, activity = _compensation_parts(ref)
    throw = instance.task(UUID(throw_id))
    if throw is None or throw.state != TaskState.STARTED:
        instance.set_job(ref, None)
        return []
    if isinstance(outcome, Failed):
        return _failed(engine, instance, ref, job, outcome)
    handler = instance.model.compensation[activity]
    if isinstance(outcome, Thrown):
        instance.set_job(ref, {"retries": 0, "incident": True})
        return [raise_incident(instance, "bpmn-error", handler.element_id,
                               f"compensation handler threw BPMN error {outcome.code!r}", ref=ref,
                               job_type=job.type)]
    instance.set_job(ref, None)
    assert isinstance(outcome, Completed)
    instance.merge_result(handler.element_id, dict(outcome.variables))
    plans = {k: [list(p) for p in v] for k, v in instance.extra.get("comp", {}).items()}
    plans[throw_id] = [p for p in plans.get(throw_id, []) if p[0] != activity_task_id]
    instance.set_extra("comp", plans)
    instance.set_extra("compensated", [*instance.extra.get("compensated", []), activity_task_id])
    if not plans[throw_id]:
        engine._advance(instance, throw.complete)
    return [("ProcessAdvanced", {"cause": "compensation-handler-completed", "element_id": handler.element_id})]
