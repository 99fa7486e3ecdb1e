"""botocore sessions that share one model loader for the whole process.

Why: every botocore session has its own data loader, and every client a fresh session makes parses its
service's model JSON again (ec2's alone is megabytes). A one-shot command makes one session and does not
care; `eksir serve` makes several per case (home, the member account's assumed role, the role's STS source),
and measured on this project's 2-core machine, twelve clients from a fresh session cost ~1.1 s of CPU against
~0.2 s when the session's loader has already parsed the models. The loader's caches hold parsed, read-only
data (models, endpoints, partitions), so sharing it across sessions and threads changes nothing but the
cost; a race between two threads loading the same model only loads it twice.

Credentials, region, profile and event handlers stay per session: only the loader is shared.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from botocore.loaders import Loader
    from botocore.session import Session as CoreSession

_LOADER: Loader | None = None
_GUARD = threading.Lock()


class _UniquePaths(list[str]):
    """A search-path list that ignores a path it already holds: boto3 appends its own data folder to the
    session's loader each time a boto3 Session is made, which on a shared loader would grow without end."""

    def append(self, path: str) -> None:
        if path not in self:
            super().append(path)


def shared_loader() -> Loader:
    """The process's one botocore data loader, made on first use as botocore makes it (`AWS_DATA_PATH`)."""
    global _LOADER  # noqa: PLW0603 - one loader per process is the point
    with _GUARD:
        if _LOADER is None:
            import botocore.session  # noqa: PLC0415 - SDK imported when used

            loader: Loader = botocore.session.Session().get_component("data_loader")
            loader._search_paths = _UniquePaths(loader.search_paths)  # type: ignore[attr-defined]
            _LOADER = loader
        return _LOADER


def core_session(**kwargs: Any) -> CoreSession:
    """A new botocore session (own credentials, config and handlers) that reads models through the shared
    loader."""
    import botocore.session  # noqa: PLC0415 - SDK imported when used

    session = botocore.session.Session(**kwargs)
    session.register_component("data_loader", shared_loader())
    return session
