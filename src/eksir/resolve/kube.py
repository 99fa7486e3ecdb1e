"""Read-only Kubernetes access for resolution, as plain JSON dicts.

Why raw JSON instead of the generated model classes: resolution reads many kinds (pods, owners, nodes, PDBs,
ConfigMaps, ServiceAccounts) and only a few fields of each; the API's own camelCase JSON is what the
responder sees with `kubectl get -o json`, needs no model conversion, and keeps this package free of
`kubernetes` imports (DESIGN: only `eksir.clients` imports the SDKs). Calls go through the caller's
`ApiClient`, so kubeconfig and EKS bearer-token clients both work, and every SDK error is translated by
`k8s_call`. A missing object is an answer (`None`), not an error: a pod that is gone is a finding in itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import orjson

from eksir.clients.k8s import k8s_call
from eksir.errors import NotFoundError

JsonObj = dict[str, Any]
_PAGE = 500
_TIMEOUT = (5, 30)  # connect, read (seconds): a dead endpoint must fail fast at 3 a.m.


def q(name: str) -> str:
    """Quote one path segment (object names cannot contain '/', but a bad finding can)."""
    return quote(name, safe="")


class KubeReader:
    """GET and paginated LIST against one API server; all methods raise eksir errors only."""

    def __init__(self, api_client: Any) -> None:
        self._api = api_client

    def _call(self, path: str, query: list[tuple[str, Any]]) -> JsonObj:
        """The response body parsed with orjson: the client's own `json.loads` of a node's pod list was the
        largest single cost of resolving a case in the fleet lab (the body is read whole either way)."""
        response = self._api.call_api(
            path,
            "GET",
            query_params=query,
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
            _return_http_data_only=True,
            _preload_content=False,
            _request_timeout=_TIMEOUT,
        )
        try:
            data = orjson.loads(response.data)
        except orjson.JSONDecodeError:
            return {}
        finally:
            response.release_conn()
        return data if isinstance(data, dict) else {}

    def get(self, path: str, doing: str) -> JsonObj | None:
        """The object at `path`, or None when the API server answers 404.

        Raises UnreachableError, PermissionDeniedError, TemporaryError or EksirError (see `k8s_call`).
        """
        try:
            with k8s_call(doing):
                return self._call(path, [])
        except NotFoundError:
            return None

    def list(self, path: str, doing: str, *, field_selector: str | None = None) -> list[JsonObj]:
        """Every item of a collection, following `continue` tokens; [] when the collection is 404."""
        return list(self._iter(path, doing, field_selector))

    def _iter(self, path: str, doing: str, field_selector: str | None) -> Iterator[JsonObj]:
        token: str | None = None
        while True:
            query: list[tuple[str, Any]] = [("limit", _PAGE)]
            if field_selector:
                query.append(("fieldSelector", field_selector))
            if token:
                query.append(("continue", token))
            try:
                with k8s_call(doing):
                    page = self._call(path, query)
            except NotFoundError:
                return
            for item in page.get("items") or []:
                if isinstance(item, dict):
                    yield item
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return


def meta(obj: JsonObj | None) -> JsonObj:
    """`metadata` of an object, {} when absent or malformed."""
    value = (obj or {}).get("metadata")
    return value if isinstance(value, dict) else {}


def section(obj: JsonObj | None, key: str) -> JsonObj:
    """A dict-valued field (`spec`, `status`), {} when absent or malformed."""
    value = (obj or {}).get(key)
    return value if isinstance(value, dict) else {}


def str_map(value: Any) -> dict[str, str]:
    """Labels/annotations as str -> str, dropping anything else."""
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items() if v is not None}
