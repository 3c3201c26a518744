"""What authorization costs: commands through the in-process bus and case-list queries (read scope + filtered list)
with no policy, regopy in-process and the OPA server, in one run (engines interleaved over rounds, medians), and
decision latency p50/p99 per engine, cached and uncached.

    python bench/policy.py [--seconds 8] [--decisions 2000] [--rounds 3]

The OPA server is the one `infra/` runs (started if needed). Figures are printed beside the same run's no-policy
baseline; nothing asserts on time. Targets (issue #11): policy costs < 15% of the no-policy command rate
in-process, decision p99 < 5 ms.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

import common  # first: puts the repo root on sys.path
from write_path import OwnedCase, definition_body, next_request, open_body

from adapters.embedded_runner import EmbeddedRunner
from adapters.event_store import sqlite_event_store
from adapters.opa_policy import OpaPolicy
from adapters.policy_cache import CachedPolicy
from adapters.rego_policy import RegoPolicy
from adapters.relational_policy import RelationalPolicy
from adapters.sqlite_documents import SqliteDocumentStore
from casestream.policy_setup import POLICY_DIR
from commands import messages as m
from commands.bus import Actor, CommandBus
from commands.policy import Policy
from domain.definition import DefinitionSpec
from infra import registry
from projections.catalog import ALL
from projections.queries import list_cases
from projections.read_scope import ReadScopes
from scripts.policy_table import scenarios


def command_rate(policy: Policy | None, seconds: float) -> float:
    """Commands per second through CommandBus.dispatch on a fresh SQLite store, one thread, the write-path mix."""
    with common.temp_dir("policy-bench") as folder:
        store = sqlite_event_store(folder / "events.db", synchronous="NORMAL")
        bus = CommandBus(store, policy)
        body = definition_body()
        spec = DefinitionSpec.from_dict(body)
        bus.dispatch(m.PublishCaseDefinition(
            key=spec.key, name=spec.name, schema=spec.schema, stages=body["stages"], queues=list(spec.queues),
            number_prefix=spec.number_prefix,
        ), Actor("bob", common.TENANT, ("supervisor",)))
        # several users, each working the cases they opened (names differ; roles and relations repeat)
        actors = [Actor(user, common.TENANT, ("caseworker",)) for user in ("alice", "carol", "dave", "erin")]
        rng = random.Random(3)
        cases = [(OwnedCase(bus.dispatch(m.OpenCase(**open_body(rng)), actors[i % 4]).id), actors[i % 4])
                 for i in range(32)]
        kinds: dict[str, Callable[..., m.Command]] = {
            "OpenCase": m.OpenCase, "AssignCase": m.AssignCase, "UpdateCaseData": m.UpdateCaseData,
            "AddComment": m.AddComment,
        }
        done, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            case, actor = cases[done % len(cases)]
            op, _path, payload = next_request(rng, case, done)
            if op != "OpenCase":
                payload = {**payload, "case_id": uuid.UUID(case.id)}
            bus.dispatch(kinds[op](**payload), actor)
            done += 1
        elapsed = time.perf_counter() - started
        store.close()
    return done / elapsed


def query_rate(policy: Policy | None, seconds: float) -> float:
    """Case-list queries per second (50 rows, newest first) as the API runs them: the reader's scope (ReadScopes:
    the definitions signature query, and the policy's `read` decisions when the scope is stale) and the filtered
    list; three definitions, one of them confidential to a group the readers are not in, 600 cases."""
    with common.temp_dir("policy-bench-q") as folder:
        store = sqlite_event_store(folder / "events.db", synchronous="NORMAL")
        documents = SqliteDocumentStore(folder / "views.db", ALL)
        bus = CommandBus(store)  # the data is loaded without a policy: only the queries are measured
        bob = Actor("bob", common.TENANT, ("supervisor",))
        body = definition_body()
        rng = random.Random(5)
        for key, access in (("claim", {}), ("complaint", {}), ("fraud", {"read_groups": ["fraud-team"]})):
            spec = DefinitionSpec.from_dict({**body, "key": key})
            bus.dispatch(m.PublishCaseDefinition(
                key=key, name=spec.name, schema=spec.schema, stages=body["stages"], queues=list(spec.queues),
                number_prefix=key.upper(), access=m.AccessIn.model_validate(access),
            ), bob)
            for _ in range(200):
                bus.dispatch(m.OpenCase(**{**open_body(rng), "definition_key": key}), bob)
        runner = EmbeddedRunner(store, documents, ALL)
        runner.start()
        runner.wait(store.max_position(), 120)
        runner.stop()
        scopes = ReadScopes(documents, policy)
        readers = [("alice", ("caseworker",)), ("carol", ("caseworker",)), ("dave", ("viewer",))]
        done, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            user, roles = readers[done % len(readers)]
            scope = scopes.of(user, common.TENANT, roles, ("claims-team",))
            page = list_cases(documents, common.TENANT, limit=50, scope=scope)
            assert page.items  # the readable definitions have cases
            done += 1
        elapsed = time.perf_counter() - started
        documents.close()
        store.close()
    return done / elapsed


def latencies(policy: Policy, requests: list[dict[str, Any]], n: int) -> tuple[float, float]:
    """p50 and p99 of one decide() in milliseconds over n requests cycling through the list."""
    times = []
    for i in range(n):
        request = requests[i % len(requests)]
        started = time.perf_counter()
        policy.decide(request)
        times.append(time.perf_counter() - started)
    return common.ms(common.percentile(times, 50)), common.ms(common.percentile(times, 99))


def _spread(values: list[float]) -> str:
    return f"{min(values):,.0f}-{max(values):,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=8.0, help="seconds per command-rate and query-rate run")
    parser.add_argument("--decisions", type=int, default=2000, help="decisions per latency figure")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds over the engines (medians shown)")
    args = parser.parse_args()
    common.banner("policy bench", f"{args.seconds:.0f} s per rate run; {args.decisions} decisions per latency")

    opa = registry.get("opa")
    opa.up()
    rego = RegoPolicy(POLICY_DIR)
    opa_policy = OpaPolicy(POLICY_DIR, opa.info()["url"], 2.0)
    engines: list[tuple[str, Policy | None]] = [
        ("none", None),
        # as build_policy serves them: names made relations, then a 2 s decision cache, then the engine
        ("embedded (regopy), as served", RelationalPolicy(CachedPolicy(rego, 2.0))),
        ("embedded (regopy), uncached", rego),
        ("OPA server, as served", RelationalPolicy(CachedPolicy(opa_policy, 2.0))),
        ("OPA server, uncached", opa_policy),
    ]
    # rounds interleave the engines, so a burst of load on this shared machine hits them all alike
    commands: dict[str, list[float]] = {name: [] for name, _ in engines}
    queries: dict[str, list[float]] = {name: [] for name, _ in engines}
    for _ in range(args.rounds):
        for name, policy in engines:
            commands[name].append(command_rate(policy, args.seconds))
            queries[name].append(query_rate(policy, args.seconds / 2))
    base_commands, base_queries = statistics.median(commands["none"]), statistics.median(queries["none"])
    rows: list[list[Any]] = []
    for name, _ in engines:
        c, q = statistics.median(commands[name]), statistics.median(queries[name])
        rows.append([name, c, _spread(commands[name]), f"{c / base_commands:.0%}", q, _spread(queries[name]),
                     f"{q / base_queries:.0%}"])
    common.table(["engine", "commands/s (median)", "range", "of none", "case lists/s (median)", "range",
                  "of none"], rows)

    matrix = [s.request for s in scenarios()]
    lat_rows: list[list[Any]] = []
    for name, policy in engines[1:]:
        p50, p99 = latencies(policy, matrix, args.decisions)  # type: ignore[arg-type]
        lat_rows.append([name, p50, p99, common.verdict(p99, 5.0, higher_is_better=False)])
    common.table(["engine", "decision p50 ms", "decision p99 ms", "p99 < 5 ms"], lat_rows)
    opa_policy.close()


if __name__ == "__main__":
    main()
