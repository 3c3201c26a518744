"""Deploying a 100-element BPMN model: checked, stored as an event, and taken by a running engine.

Each round deploys a new version of the same process id (its name changes, so its content hash does) through
`deploy_files` (the engine's parser checks it, a DeployProcess command stores it) and then lets the engine's
deployment follower take it (`DeploymentFollower.learn`, what the process manager does before its next step).
A second figure redeploys unchanged content (no new version). Baseline, same rounds interleaved: the engine's bare
check and parse of the same XML (`prepare_model`: what a deploy cost when files were only read at start, no event).
Target (issue #15): deploy of a 100-element model < 200 ms.

    python bench/process_deploy.py [--rounds 30] [--tasks 48]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from common import banner, percentile, table, temp_dir

from adapters.event_store import sqlite_event_store
from commands.bus import Actor, CommandBus
from processes.deployment_follower import DeploymentFollower
from processes.deployments import Resource, deploy_files
from processes.engine import EmbeddedEngine
from processes.jobs import CommandSender, Job, known_task_types, task_type
from processes.model import prepare_model

ADMIN = Actor("bench", "acme", ("admin",))


@task_type("bench.noop")
def noop(job: Job, send: CommandSender) -> dict[str, Any]:
    """Does nothing (the model is deployed, never run here)."""
    return {}


def model(tasks: int, name: str) -> bytes:
    """start -> `tasks` service tasks in a chain -> end: 2 * tasks + 3 elements (flows included)."""
    parts = ['<bpmn:startEvent id="Begin"><bpmn:outgoing>f0</bpmn:outgoing></bpmn:startEvent>']
    for i in range(tasks):
        parts.append(f'<bpmn:sequenceFlow id="f{i}" sourceRef="{"Begin" if i == 0 else f"T{i - 1}"}" '
                     f'targetRef="T{i}"/>')
        parts.append(f'<bpmn:serviceTask id="T{i}" name="Step {i}"><bpmn:extensionElements>'
                     '<zeebe:taskDefinition type="bench.noop"/><zeebe:ioMapping>'
                     f'<zeebe:input source="=n + {i}" target="n{i}"/></zeebe:ioMapping></bpmn:extensionElements>'
                     f'<bpmn:incoming>f{i}</bpmn:incoming><bpmn:outgoing>f{i + 1}</bpmn:outgoing>'
                     '</bpmn:serviceTask>')
    parts.append(f'<bpmn:sequenceFlow id="f{tasks}" sourceRef="T{tasks - 1}" targetRef="Finish"/>')
    parts.append(f'<bpmn:endEvent id="Finish"><bpmn:incoming>f{tasks}</bpmn:incoming></bpmn:endEvent>')
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<bpmn:definitions '
            'xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
            'xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="Defs" targetNamespace="http://bench">'
            f'<bpmn:process id="bench-deploy" name="{name}" isExecutable="true">{"".join(parts)}'
            '</bpmn:process></bpmn:definitions>').encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--tasks", type=int, default=48, help="service tasks (48: 99 elements with the flows)")
    parser.add_argument("--quick", action="store_true", help="10 rounds")
    args = parser.parse_args()
    rounds = 10 if args.quick else args.rounds
    elements = 2 * args.tasks + 3
    banner("process deploy", f"{rounds} deployments of a {elements}-element model (SQLite event store)")
    with temp_dir("deploy") as folder:
        store = sqlite_event_store(folder / "events.db")
        bus = CommandBus(store)
        engine = EmbeddedEngine(bus, store)
        follower = DeploymentFollower(store, engine)
        deploy_files(bus, ADMIN, [Resource("warm.bpmn", model(args.tasks, "warm-up"))])  # imports, caches
        follower.learn()
        stored: list[float] = []
        learned: list[float] = []
        total: list[float] = []
        bare: list[float] = []
        types = known_task_types()
        for n in range(rounds):
            xml = model(args.tasks, f"version {n}")
            began = time.perf_counter()
            prepare_model(xml, types, "bench.bpmn")
            bare.append((time.perf_counter() - began) * 1000)
            began = time.perf_counter()
            [outcome] = deploy_files(bus, ADMIN, [Resource("bench.bpmn", xml)])
            mid = time.perf_counter()
            follower.learn()
            end = time.perf_counter()
            assert outcome.status == "deployed", outcome.message()
            found = engine.deployed("bench-deploy", "acme")
            assert found is not None and found.deployed.name == f"version {n}"
            stored.append((mid - began) * 1000)
            learned.append((end - mid) * 1000)
            total.append((end - began) * 1000)
        unchanged: list[float] = []
        for _ in range(rounds):
            began = time.perf_counter()
            [outcome] = deploy_files(bus, ADMIN, [Resource("bench.bpmn", xml)])
            unchanged.append((time.perf_counter() - began) * 1000)
            assert outcome.status == "unchanged"
        engine.stop()
        store.close()
    rows = [(label, f"{percentile(values, 50):.1f}", f"{percentile(values, 99):.1f}", f"{max(values):.1f}")
            for label, values in (("checked + stored (new version)", stored), ("taken by the engine", learned),
                                  ("deploy, end to end", total), ("redeploy unchanged", unchanged),
                                  ("baseline: bare check + parse", bare))]
    table(("ms", "p50", "p99", "max"), rows)
    ratio = percentile(total, 50) / percentile(bare, 50)
    print(f"\nRATIO deploy end to end / bare check + parse (p50) = {ratio:.2f}; target: deploy of a 100-element "
          f"model < 200 ms: p99 {percentile(total, 99):.1f} ms ({'met' if percentile(total, 99) < 200 else 'MISSED'})")


if __name__ == "__main__":
    main()
