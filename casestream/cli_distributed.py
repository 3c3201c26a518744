"""Distributed-mode commands: `casestream relay` (event log -> Kafka), `casestream contract export`,
`casestream service-token`; and the distributed mode's identity default (the infra Keycloak)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from casestream.cli_process import log_info, on_stop_signal, stop_event
from casestream.settings import Settings

if TYPE_CHECKING:  # aiokafka is an extra of the distributed mode: imported only when a command needs it
    from adapters.kafka_relay import RelayConfig
    from adapters.zeebe_engine import ZeebeConfig

DEFAULT_CONTRACT_DIR = Path("docs/contract")


def infra_keycloak_issuers() -> dict[str, str]:
    """{issuer: tenant} of the Keycloak that `casestream infra` runs: one realm per tenant."""
    from infra.keycloak import KeycloakServer, realm_names

    keycloak = KeycloakServer()
    return {keycloak.issuer(realm): realm for realm in realm_names()}


def with_distributed_identity(settings: Settings) -> Settings:
    """The distributed mode trusts the infra Keycloak's realms (the built-in issuer off) unless the operator named
    issuers in CASESTREAM_OIDC_ISSUERS; `{}` there keeps the built-in issuer (throwaway tenants in tests)."""
    if "oidc_issuers" in settings.model_fields_set:
        return settings
    return settings.model_copy(update={"oidc_issuers": infra_keycloak_issuers()})


def with_distributed_policy(settings: Settings) -> Settings:
    """The distributed mode asks the OPA server that `infra/` runs (every API replica shares its decisions' source)
    unless the operator chose CASESTREAM_POLICY_ENGINE / CASESTREAM_OPA_URL."""
    if "policy_engine" in settings.model_fields_set:
        return settings
    update: dict[str, object] = {"policy_engine": "opa"}
    if "opa_url" not in settings.model_fields_set:
        from infra.opa import OpaServer

        update["opa_url"] = OpaServer().info()["url"]
    return settings.model_copy(update=update)


def relay_config(settings: Settings) -> RelayConfig:
    """The relay's configuration, from the one Settings object (CASESTREAM_KAFKA_* / CASESTREAM_RELAY_*)."""
    from adapters.kafka_relay import RelayConfig

    return RelayConfig(
        bootstrap=settings.kafka_bootstrap,
        prefix=settings.kafka_topic_prefix,
        partitions=settings.kafka_partitions,
        replication_factor=settings.kafka_replication_factor,
        name=settings.relay_name,
        batch_size=settings.relay_batch_size,
        poll_interval=settings.relay_poll_interval,
    )


async def _relay_until_signalled(settings: Settings) -> None:
    from adapters.kafka_relay import KafkaRelay
    from casestream.bootstrap import build_event_store

    config = relay_config(settings)
    store = build_event_store(settings)
    relay = KafkaRelay(store, config)
    stop = stop_event()
    typer.echo(f"relay {config.name}: {settings.event_store} event store -> Kafka {config.bootstrap} "
               f"(topics {', '.join(relay.topic_names())}); Ctrl-C stops")
    try:
        await relay.run(stop)
    finally:
        await asyncio.to_thread(store.close)
        typer.echo(f"relay {config.name}: stopped after position {relay.position}")


def zeebe_config(settings: Settings) -> ZeebeConfig:
    """The Zeebe adapter's configuration, from the one Settings object (CASESTREAM_ZEEBE_*)."""
    from adapters.zeebe_engine import ZeebeConfig

    return ZeebeConfig(
        address=settings.zeebe_address, tenant=settings.zeebe_tenant, worker_name=settings.zeebe_worker_name,
        job_timeout_ms=settings.zeebe_job_timeout_ms, request_timeout_ms=settings.zeebe_request_timeout_ms,
        max_jobs=settings.zeebe_max_jobs, retry_backoff_ms=settings.zeebe_retry_backoff_ms,
        max_backoff_ms=settings.zeebe_max_backoff_ms,
    )


async def _zeebe_worker_until_signalled(settings: Settings, deploy: list[Path]) -> None:
    from adapters.zeebe_engine import ZeebeProcesses, build_worker, channel_for
    from casestream.bootstrap import build_event_store
    from commands.bus import CommandBus

    config = zeebe_config(settings)
    store = build_event_store(settings)
    channel = channel_for(config)
    worker = build_worker(channel, CommandBus(store), config)
    on_stop_signal(lambda: asyncio.ensure_future(worker.stop()))
    try:
        if deploy:
            deployed = await ZeebeProcesses(channel, config).deploy(*deploy)
            typer.echo(f"zeebe-worker: deployed {', '.join(f'{p} (key {k})' for p, k in deployed.items())}")
        types = ", ".join(task.type for task in worker.tasks)
        typer.echo(f"zeebe-worker {config.worker_name}: {settings.event_store} event store, Zeebe {config.address}, "
                   f"task types {types}; Ctrl-C stops")
        await worker.work()
    finally:
        await channel.close()
        await asyncio.to_thread(store.close)
        typer.echo(f"zeebe-worker {config.worker_name}: stopped")


def register(app: typer.Typer) -> None:
    """Add `relay` and `contract export` to the casestream command."""

    @app.command()
    def relay() -> None:
        """Publish the event log to Kafka (CloudEvents, key = aggregate id) until Ctrl-C; resumes where it stopped."""
        log_info()
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_relay_until_signalled(Settings()))

    contract_app = typer.Typer(help="The published event contract (JSON Schemas, AsyncAPI).", no_args_is_help=True)

    @contract_app.command("export")
    def export(
        out: Annotated[Path, typer.Option(help="Folder to write to.")] = DEFAULT_CONTRACT_DIR,
        allow_breaking: Annotated[
            bool, typer.Option("--allow-breaking", help="Write even if a schema breaks the committed one.")
        ] = False,
    ) -> None:
        """Write JSON Schemas per event type and the AsyncAPI 3.0 document (refuses breaking changes)."""
        from adapters.contract import export as write_contract

        try:
            written = write_contract(out, allow_breaking=allow_breaking)
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        typer.echo(f"contract: {len(written)} files in {out}")

    app.add_typer(contract_app, name="contract")

    from casestream.cli_worker import register as register_worker

    register_worker(app)  # `casestream worker`, `worker retry-dead-letters`, `worker rebuild`

    @app.command("zeebe-worker")
    def zeebe_worker(
        deploy: Annotated[
            list[Path] | None, typer.Option("--deploy", help="BPMN file to check and deploy first (repeatable).")
        ] = None,
    ) -> None:
        """Run the built-in task types as Zeebe job workers (CASESTREAM_ZEEBE_*) until Ctrl-C."""
        from processes.bpmn import BpmnRejected

        log_info()
        try:
            with contextlib.suppress(KeyboardInterrupt):
                asyncio.run(_zeebe_worker_until_signalled(Settings(), list(deploy or [])))
        except BpmnRejected as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None

    @app.command("service-token")
    def service_token(
        tenant: Annotated[str | None, typer.Option(help="Tenant whose issuer signs (default from settings).")] = None,
    ) -> None:
        """Print a bearer token of casestream's own client (client credentials at the tenant's OIDC issuer)."""
        from adapters.client_credentials import ClientCredentials, ClientCredentialsRefused, issuer_for_tenant

        settings = with_distributed_identity(Settings())
        try:
            issuer = issuer_for_tenant(settings.oidc_issuers, tenant or settings.default_tenant)
            client = ClientCredentials(issuer, settings.oidc_client_id, settings.oidc_client_secret)
            typer.echo(client.access_token())
        except ClientCredentialsRefused as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None

    from casestream.cli_notify import register as register_notify

    register_notify(app)  # `casestream notify` (Novu publisher)


def main() -> None:
    """`python -m casestream.cli_distributed ...` (the same commands without the rest of the CLI)."""
    app = typer.Typer(no_args_is_help=True)
    register(app)
    app()


if __name__ == "__main__":
    main()
