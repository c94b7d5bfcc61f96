"""``GET /metrics``: the node's Prometheus metrics on the API port, for ``Authorization: Bearer
<VOIPBIN_METRICS_TOKEN>`` only (no token configured: not served here; see ``VOIPBIN_METRICS_PORT``)."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response

from voipbin.api.deps import MetricsDep, SettingsDep
from voipbin.api.errors import ApiError
from voipbin.metrics.registry import CONTENT_TYPE

router = APIRouter(tags=["metrics"])


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, settings: SettingsDep, node_metrics: MetricsDep) -> Response:
    token = settings.metrics_token
    if not token:
        raise ApiError(404, "NOT_FOUND", "Metrics are not served on this port (set VOIPBIN_METRICS_TOKEN).")
    auth = request.headers.get("authorization", "")
    given = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
    if not hmac.compare_digest(given.encode(), token.encode()):
        raise ApiError(401, "INVALID_CREDENTIALS", "The metrics token is missing or wrong.")
    return Response(node_metrics.render(), media_type=CONTENT_TYPE)
