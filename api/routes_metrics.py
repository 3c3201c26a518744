"""GET /metrics: projection lag and backpressure in the Prometheus text format (no token: scraped by operators)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from api.schemas.problem import public_responses

router = APIRouter(tags=["health"])
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class PrometheusText(PlainTextResponse):
    """The Prometheus text exposition format, version 0.0.4."""

    media_type = CONTENT_TYPE


@router.get("/metrics", response_class=PrometheusText, responses={
    200: {"description": "Prometheus text exposition format 0.0.4."}, **public_responses()})
def metrics(request: Request) -> PlainTextResponse:
    """Lag per read model and partition (events, seconds), relay and process-manager lag, and whether commands
    are being refused."""
    from api.backpressure import Gate

    gate: Gate = request.app.state.gate
    decision = gate.decision()
    lines = [
        gate.monitor.report.prometheus().rstrip("\n"),
        "# HELP casestream_backpressure_refusing 1 while command intake is refused because of lag.",
        "# TYPE casestream_backpressure_refusing gauge",
        f"casestream_backpressure_refusing {0 if decision.admit else 1}",
        "# HELP casestream_backpressure_refused_total Commands answered 429 because of lag.",
        "# TYPE casestream_backpressure_refused_total counter",
        f"casestream_backpressure_refused_total {gate.refused}",
        "# HELP casestream_backpressure_limit_events Lag (events) above which commands are refused; 0: none.",
        "# TYPE casestream_backpressure_limit_events gauge",
        f"casestream_backpressure_limit_events {gate.limits.events}",
        "# HELP casestream_backpressure_limit_seconds Lag (seconds) above which commands are refused; 0: none.",
        "# TYPE casestream_backpressure_limit_seconds gauge",
        f"casestream_backpressure_limit_seconds {gate.limits.seconds:g}",
    ]
    return PlainTextResponse("\n".join(lines) + "\n", media_type=CONTENT_TYPE)
