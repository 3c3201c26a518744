"""Embedded BPMN engine: instances/s and jobs/s through commands, job latency, one step on a 100+ task instance.

Each figure sits beside a same-run baseline of bare SpiffWorkflow (the same BPMN, no persistence, no commands).
Targets (issue #5): >= 150 simple instances/s; job latency (ready -> its command stored) p99 < 100 ms; one step
on an instance with 100+ tasks < 100 ms. Issue #15: a call activity run as a parallel multi-instance over 10
items (each call a one-service-task process) >= 30 instances/s.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

from common import banner, percentile, table, temp_dir

from adapters.event_store import sqlite_event_store
from commands.bus import Actor, CommandBus
from commands.messages import DefineRecordType, SaveRecord
from processes.bpmn import check_bpmn
from processes.engine import EmbeddedEngine
from processes.jobs import CommandSender, Job, known_task_types, task_type
from processes.runtime import FeelScriptEngine, use_engine_clock

TENANT = "acme"
STORED: dict[str, float] = {}  # job key -> when its command was stored
READY: dict[str, float] = {}  # job key -> when the engine handed it to the workers
_lock = threading.Lock()


@task_type("bench.save")
def save(job: Job, send: CommandSender) -> dict[str, Any]:
    """Save one reference record per job (a fresh aggregate: no contention between instances)."""
    send(SaveRecord(type_key="bench", key=f"r-{job.key[-36:]}"[:40], data={"n": job.variables.get("n", 0)}))
    with _lock:
        STORED[job.key] = time.perf_counter()
    return {"saved": True}


def _head(body: str, pid: str) -> bytes:
    return ('<?xml version="1.0" encoding="UTF-8"?><bpmn:definitions '
            'xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0"'
            f' id="D" targetNamespace="http://bench"><bpmn:process id="{pid}" isExecutable="true">{body}'
            "</bpmn:process></bpmn:definitions>").encode()


def chain(pid: str, services: int) -> bytes:
    """start -> n service tasks -> end."""
    parts = ['<bpmn:startEvent id="Begin"><bpmn:outgoing>f0</bpmn:outgoing></bpmn:startEvent>']
    for n in range(services):
        parts.append(f'<bpmn:sequenceFlow id="f{n}" sourceRef="{"Begin" if n == 0 else f"S{n - 1}"}" '
                     f'targetRef="S{n}"/>')
        parts.append(f'<bpmn:serviceTask id="S{n}"><bpmn:extensionElements><zeebe:taskDefinition type="bench.save"/>'
                     f'</bpmn:extensionElements><bpmn:incoming>f{n}</bpmn:incoming><bpmn:outgoing>f{n + 1}'
                     "</bpmn:outgoing></bpmn:serviceTask>")
    parts.append(f'<bpmn:sequenceFlow id="f{services}" sourceRef="S{services - 1}" targetRef="Finish"/>')
    parts.append(f'<bpmn:endEvent id="Finish"><bpmn:incoming>f{services}</bpmn:incoming></bpmn:endEvent>')
    return _head("".join(parts), pid)


def call_each(pid: str, called: str) -> bytes:
    """start -> call activity `called` once per item of `items` (parallel multi-instance) -> end."""
    return _head(
        '<bpmn:startEvent id="Begin"><bpmn:outgoing>f0</bpmn:outgoing></bpmn:startEvent>'
        '<bpmn:sequenceFlow id="f0" sourceRef="Begin" targetRef="Each"/>'
        f'<bpmn:callActivity id="Each"><bpmn:extensionElements><zeebe:calledElement processId="{called}"/>'
        '</bpmn:extensionElements><bpmn:incoming>f0</bpmn:incoming><bpmn:outgoing>f1</bpmn:outgoing>'
        '<bpmn:multiInstanceLoopCharacteristics><bpmn:extensionElements><zeebe:loopCharacteristics '
        'inputCollection="=items" inputElement="item" outputCollection="results" outputElement="=saved"/>'
        '</bpmn:extensionElements></bpmn:multiInstanceLoopCharacteristics></bpmn:callActivity>'
        '<bpmn:sequenceFlow id="f1" sourceRef="Each" targetRef="Finish"/>'
        '<bpmn:endEvent id="Finish"><bpmn:incoming>f1</bpmn:incoming></bpmn:endEvent>', pid)


def wide(pid: str, branches: int) -> bytes:
    """start -> parallel split into n user tasks -> join -> end (a big tree for the step measurement)."""
    parts = ['<bpmn:startEvent id="Begin"><bpmn:outgoing>s</bpmn:outgoing></bpmn:startEvent>',
             '<bpmn:sequenceFlow id="s" sourceRef="Begin" targetRef="Split"/>',
             '<bpmn:parallelGateway id="Split"><bpmn:incoming>s</bpmn:incoming>'
             + "".join(f"<bpmn:outgoing>a{n}</bpmn:outgoing>" for n in range(branches)) + "</bpmn:parallelGateway>",
             '<bpmn:parallelGateway id="Join">'
             + "".join(f"<bpmn:incoming>b{n}</bpmn:incoming>" for n in range(branches))
             + "<bpmn:outgoing>e</bpmn:outgoing></bpmn:parallelGateway>",
             '<bpmn:sequenceFlow id="e" sourceRef="Join" targetRef="Finish"/>',
             '<bpmn:endEvent id="Finish"><bpmn:incoming>e</bpmn:incoming></bpmn:endEvent>']
    for n in range(branches):
        parts.append(f'<bpmn:sequenceFlow id="a{n}" sourceRef="Split" targetRef="U{n}"/>')
        parts.append(f'<bpmn:userTask id="U{n}"><bpmn:incoming>a{n}</bpmn:incoming><bpmn:outgoing>b{n}'
                     "</bpmn:outgoing></bpmn:userTask>")
        parts.append(f'<bpmn:sequenceFlow id="b{n}" sourceRef="U{n}" targetRef="Join"/>')
    return _head("".join(parts), pid)


def wait_until(done: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        time.sleep(0.005)


def bare_spiff(xml: bytes, count: int) -> float:
    """Baseline: the same process run to completion by SpiffWorkflow alone (jobs completed in place)."""
    from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
    from SpiffWorkflow.util.task import TaskState

    deployed = check_bpmn(xml, known_task_types())
    use_engine_clock([deployed.spec])
    start = time.perf_counter()
    for _ in range(count):
        wf = BpmnWorkflow(deployed.spec, deployed.subprocess_specs, script_engine=FeelScriptEngine({}, time_now))
        wf.do_engine_steps()
        while not wf.is_completed():
            for task in wf.get_tasks(state=TaskState.STARTED):
                task.complete()
            wf.do_engine_steps()
    return count / (time.perf_counter() - start)


def bare_call_each(count: int) -> float:
    """Baseline: the call-activity x 10 process run by SpiffWorkflow alone (the engine's specs, jobs completed in
    place, nothing stored): instances/s."""
    from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
    from SpiffWorkflow.util.task import TaskState

    from processes.call_activity import link_calls
    from processes.model import prepare_model

    types = known_task_types()
    called = prepare_model(chain("simple", 1), types, "simple.bpmn")
    model = prepare_model(call_each("call-each", "simple"), types, "call-each.bpmn")
    link_calls(model, {"simple": called})
    start = time.perf_counter()
    for _ in range(count):
        wf = BpmnWorkflow(model.deployed.spec, model.deployed.subprocess_specs,
                          script_engine=FeelScriptEngine({"items": list(range(10))}, time_now))
        wf.do_engine_steps()
        while not wf.is_completed():
            for task in wf.get_tasks(state=TaskState.STARTED):
                if not task.task_spec.manual and not wf.subprocesses.get(task.id):
                    task.complete()
            wf.do_engine_steps()
    return count / (time.perf_counter() - start)


def time_now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def run_instances(engine: EmbeddedEngine, pid: str, count: int, jobs_per: int,
                  variables: dict[str, Any] | None = None) -> tuple[float, float, float]:
    """Start `count` instances from one thread and wait until all are complete; instances/s, jobs/s and the
    process's CPU seconds per instance (all threads: a steadier figure than the rate on a shared machine)."""
    STORED.clear()
    READY.clear()
    start, cpu = time.perf_counter(), time.process_time()
    for n in range(count):
        engine.start(pid, tenant=TENANT, variables={"n": n, **(variables or {})})
    wait_until(lambda: len(STORED) >= count * jobs_per and not engine.open_instances(), 300)
    elapsed = time.perf_counter() - start
    return count / elapsed, len(STORED) / elapsed, (time.process_time() - cpu) / count


def step_on_wide(engine: EmbeddedEngine, branches: int, steps: int) -> tuple[list[float], int]:
    key = engine.start("wide", tenant=TENANT, variables={})
    instance = engine.instance(key, TENANT)
    assert instance is not None
    size = len(instance.workflow.tasks)
    times = []
    for _element, task_id in list(engine.user_task_ids(key, TENANT).items())[:steps]:
        t0 = time.perf_counter()
        engine.complete_user_task(TENANT, task_id, {"ok": True})
        times.append(time.perf_counter() - t0)
    return times, size


def _spiff_config(spec: Any) -> dict[Any, Any]:
    """SpiffWorkflow's serializer configuration, with our spec classes stored like the classes they extend."""
    from SpiffWorkflow.bpmn.serializer.config import DEFAULT_CONFIG

    config = dict(DEFAULT_CONFIG)
    for task_spec in spec.task_specs.values():
        cls = type(task_spec)
        if cls not in config:
            base = next((b for b in cls.__mro__[1:] if b in config), None)
            if base is not None:
                config[cls] = config[base]
    return config


def bare_wide_step(branches: int, steps: int) -> tuple[list[float], list[float]]:
    """Baseline: the same step in SpiffWorkflow alone, and with the whole workflow serialised (naive persistence)."""
    from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
    from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
    from SpiffWorkflow.util.task import TaskState

    deployed = check_bpmn(wide("wide", branches), known_task_types())
    wf = BpmnWorkflow(deployed.spec, deployed.subprocess_specs, script_engine=FeelScriptEngine({}, time_now))
    wf.do_engine_steps()
    serializer = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(_spiff_config(deployed.spec)))
    bare, full = [], []
    ready = wf.get_tasks(state=TaskState.READY)
    for task in ready[:steps]:
        t0 = time.perf_counter()
        task.run()
        wf.do_engine_steps()
        t1 = time.perf_counter()
        serializer.serialize_json(wf)
        t2 = time.perf_counter()
        bare.append(t1 - t0)
        full.append(t2 - t0)
    return bare, full


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (well under a minute)")
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--branches", type=int, default=60, help="user tasks in the wide process (tree > 2x)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    count = 200 if args.quick else args.instances
    steps = 20 if args.quick else 50
    banner("bench/process_engine.py: embedded BPMN engine (SQLite event store, synchronous=NORMAL)",
           f"{count} instances per run, {args.workers} job workers, wide process with {args.branches} user tasks")
    with temp_dir("casestream-bench-processes") as folder:
        store = sqlite_event_store(folder / "events.db", synchronous="NORMAL")
        bus = CommandBus(store)
        bus.dispatch(DefineRecordType(key="bench", name="Bench", schema={"type": "object"}),
                     Actor("admin", TENANT, ("admin",)))
        engine = EmbeddedEngine(bus, store, workers=args.workers, task_types=known_task_types(),
                                on_job_ready=lambda job: READY.__setitem__(job.key, time.perf_counter()))
        engine.deploy(chain("simple", 1), "simple.bpmn")
        engine.deploy(chain("five", 5), "five.bpmn")
        engine.deploy(wide("wide", args.branches), "wide.bpmn")
        engine.deploy(call_each("call-each", "simple"), "call-each.bpmn")
        engine.start_background()
        try:
            run_instances(engine, "simple", 20, 1)  # warm-up
            simple_rate, _, simple_cpu = run_instances(engine, "simple", count, 1)
            latencies = [STORED[k] - READY[k] for k in STORED if k in READY]
            _, job_rate, _ = run_instances(engine, "five", max(count // 5, 20), 5)
            call_rate, _, call_cpu = run_instances(engine, "call-each", max(count // 5, 20), 10,
                                                   {"items": list(range(10))})
            step_times, size = step_on_wide(engine, args.branches, steps)  # last: its instance stays open
        finally:
            engine.stop()
            store.close()
    bare_cpu = time.process_time()
    bare_simple = bare_spiff(chain("simple", 1), count)
    bare_cpu = (time.process_time() - bare_cpu) / count
    bare_five = bare_spiff(chain("five", 5), max(count // 5, 20)) * 5
    bare_step, full_step = bare_wide_step(args.branches, steps)
    bare_call = bare_call_each(max(count // 5, 20))
    table(
        ["what", "embedded engine", "bare SpiffWorkflow (same run)", "target"],
        [
            ["simple instances/s (start -> service task -> end, via commands)", f"{simple_rate:.0f}",
             f"{bare_simple:.0f}", ">= 150"],
            ["  CPU ms per simple instance (all threads)", f"{simple_cpu * 1000:.2f}", f"{bare_cpu * 1000:.2f}",
             "-"],
            ["service-task jobs/s (5-task chain)", f"{job_rate:.0f}", f"{bare_five:.0f}", "-"],
            ["job latency ready -> command stored, p50 / p99 ms",
             f"{percentile(latencies, 50) * 1000:.1f} / {percentile(latencies, 99) * 1000:.1f}", "-", "p99 < 100"],
            ["call activity x 10 (parallel multi-instance) instances/s", f"{call_rate:.0f}", f"{bare_call:.0f}",
             ">= 30"],
            ["  CPU ms per call-activity instance (all threads)", f"{call_cpu * 1000:.1f}", "-", "-"],
            [f"one step on a {size}-task instance, p50 / p99 ms",
             f"{percentile(step_times, 50) * 1000:.1f} / {percentile(step_times, 99) * 1000:.1f}",
             f"{statistics.median(bare_step) * 1000:.1f} (no persistence); "
             f"{statistics.median(full_step) * 1000:.1f} (+ whole-workflow JSON)", "< 100"],
        ],
    )
    print(f"RATIO simple instances/s engine/bare = {simple_rate / bare_simple:.2f}; "
          f"call activity x 10 engine/bare = {call_rate / bare_call:.2f}; "
          f"step p50 engine/bare+full-serialise = {percentile(step_times, 50) / statistics.median(full_step):.2f}")


if __name__ == "__main__":
    main()
