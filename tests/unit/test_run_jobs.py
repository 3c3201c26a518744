"""`run_jobs`: several jobs' commands decided in shared batches give each job the outcome `run_job` gives it alone,
and store the same events (#13)."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any
from uuid import UUID

from adapters.event_store import RecorderEventStore
from commands import messages as m
from commands.bus import Actor, CommandBus
from domain.case import Case
from processes.jobs import CommandSender, Completed, Job, JobOutcome, Thrown, run_job, run_jobs, task_type
from tests.unit.conftest import TENANT, open_claim

_keys = itertools.count(1)


@task_type("test.comment-twice")
def comment_twice(job: Job, send: CommandSender) -> dict[str, Any]:
    """Two commands, the second naming the first's result: each round answers one more."""
    case_id = UUID(str(job.variables["caseId"]))
    first = send(m.AddComment(case_id=case_id, body="first"))
    second = send(m.AddComment(case_id=case_id, body=f"after version {first.version}"))
    return {"versions": [first.version, second.version]}


def job(type_: str, variables: Mapping[str, Any]) -> Job:
    return Job(key=f"jobs-{next(_keys)}", type=type_, process_instance_key="pi-1", element_id="task", tenant=TENANT,
               variables=dict(variables), process_id="claim-lifecycle")


def comments(store: RecorderEventStore, case_id: str) -> list[str]:
    case = Case.replay(UUID(case_id), store.events_of(UUID(case_id)))
    return [comment.body for comment in case.comments.values()]


def test_jobs_run_together_get_what_each_gets_alone(bus: CommandBus, store: RecorderEventStore, alice: Actor,
                                                   claim: object) -> None:
    together, alone = open_claim(bus, alice).id, open_claim(bus, alice).id

    def jobs(case_id: str) -> list[Job]:
        return [
            job("case.move-stage", {"caseId": case_id, "stage": "review"}),
            job("test.comment-twice", {"caseId": case_id}),
            job("case.move-stage", {"caseId": case_id, "stage": "nowhere"}),  # refused: a BPMN error
            job("case.move-stage", {"caseId": case_id}),  # no stage: an invalid input, sends nothing
            job("no.such-type", {"caseId": case_id}),
        ]

    batched = run_jobs(jobs(together), bus)
    singles: list[JobOutcome] = [run_job(each, bus) for each in jobs(alone)]
    assert batched == singles
    assert batched[0] == Completed({"stage": "review"})
    assert batched[1] == Completed({"versions": [3, 4]})
    assert isinstance(batched[2], Thrown) and batched[2].code == "unknown-stage"
    assert comments(store, together) == comments(store, alone) == ["first", "after version 3"]


def test_a_job_run_again_is_answered_by_the_command_log(bus: CommandBus, store: RecorderEventStore, alice: Actor,
                                                       claim: object) -> None:
    case_id = open_claim(bus, alice).id
    twice = job("test.comment-twice", {"caseId": case_id})
    assert run_jobs([twice], bus) == run_jobs([twice], bus)  # a retried job: its commands are not stored again
    assert comments(store, case_id) == ["first", "after version 2"]
