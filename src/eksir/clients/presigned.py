"""Upload bytes to a presigned URL (Security Incident Response attachments), as one PUT.

Why not boto3: the URL is already signed by the service; any HTTP client sends it. urllib3 is what botocore
itself uses, so nothing new is installed. Failures are eksir errors: unreachable (exit 7) or refused.
"""

from __future__ import annotations

import urllib3

from eksir.errors import EksirError, UnreachableError

_TIMEOUT = urllib3.Timeout(connect=10.0, read=120.0)


def put_presigned(url: str, data: bytes) -> None:
    """PUT `data` to `url`; raises UnreachableError when it cannot be sent, EksirError when it is refused."""
    target = url.split("?", 1)[0]
    try:
        response = urllib3.PoolManager(
            timeout=_TIMEOUT, retries=urllib3.Retry(3, backoff_factor=0.5)
        ).request("PUT", url, body=data, headers={"Content-Length": str(len(data))})
    except urllib3.exceptions.HTTPError as exc:
        raise UnreachableError(f"upload to {target}: {exc.__class__.__name__}") from exc
    if response.status >= 300:
        raise EksirError(f"upload to {target}: refused with HTTP {response.status}")
