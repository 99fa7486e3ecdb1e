"""botocore's service models as data: shapes and member names, no client, no credentials, no network.

The finding parser names keys after GuardDuty's own service model instead of a hand-written alias table
(findings/shapes.py); reading that model is the one thing it needs from the SDK, and clients/ is the only
layer that imports the SDK. Kept apart from clients/aws.py so that triage, which only reads findings, loads
botocore's model loader and nothing of the client machinery.
"""

from __future__ import annotations

from typing import Any


def service_model(service: str) -> Any:
    """The botocore `ServiceModel` of `service` (e.g. "guardduty"); loading it costs ~0.3 s, so callers cache.

    botocore is imported here, not at module import: only reading a finding needs it.
    """
    import botocore.session  # noqa: PLC0415 - see the docstring

    return botocore.session.get_session().get_service_model(service)
