"""The attacker's image, built locally from this machine's static busybox (no registry is reachable).

Why a Docker archive: `ctr images import` reads it, it needs no registry, and its config's `diff_ids` (the
sha256 of each uncompressed layer tar) are all containerd checks. The image is tagged with the pod's image
reference so containerd, the capture and the pod agree on the name. The layer is deterministic (fixed mtimes,
owners and order), so the same busybox gives the same image id on every run.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

from eksir.errors import LabError

BUSYBOX = Path("/bin/busybox")
APPLETS = ("sh", "sleep", "ps", "cat", "ls", "id", "env", "nc", "wget", "mount", "hostname")
_MTIME = 1_700_000_000


def _add(tar: tarfile.TarFile, info: tarfile.TarInfo, data: bytes | None = None) -> None:
    info.mtime, info.uid, info.gid, info.uname, info.gname = _MTIME, 0, 0, "root", "root"
    if data is not None:
        info.size = len(data)
    tar.addfile(info, io.BytesIO(data) if data is not None else None)


def _dir(tar: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    _add(tar, info)


def layer_tar(busybox: bytes) -> bytes:
    """One layer: /bin/busybox, its applet links, and the empty folders a shell expects."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in ("bin", "dev", "etc", "proc", "sys", "tmp", "root"):
            _dir(tar, name)
        binary = tarfile.TarInfo("bin/busybox")
        binary.mode = 0o755
        _add(tar, binary, busybox)
        for applet in APPLETS:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname, link.mode = tarfile.SYMTYPE, "busybox", 0o777
            _add(tar, link)
        passwd = tarfile.TarInfo("etc/passwd")
        passwd.mode = 0o644
        _add(tar, passwd, b"root:x:0:0:root:/root:/bin/sh\n")
    return buffer.getvalue()


def image_archive(reference: str, target: Path, busybox: Path = BUSYBOX) -> str:
    """Write a Docker archive of the image tagged `reference` to `target`; returns the image config digest.

    Raises LabError when the static busybox is missing (Debian package `busybox-static`).
    """
    try:
        layer = layer_tar(busybox.read_bytes())
    except OSError as exc:
        raise LabError(
            f"cannot read {busybox} ({exc.strerror}): install Debian's busybox-static for the node image"
        ) from exc
    diff_id = hashlib.sha256(layer).hexdigest()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff_id}"]},
            "created": "2023-11-14T22:13:20Z",
        },
        sort_keys=True,
    ).encode()
    config_digest = hashlib.sha256(config).hexdigest()
    manifest = [
        {"Config": f"{config_digest}.json", "RepoTags": [reference], "Layers": [f"{diff_id}/layer.tar"]}
    ]
    with tarfile.open(target, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in (
            (f"{diff_id}/layer.tar", layer),
            (f"{config_digest}.json", config),
            ("manifest.json", json.dumps(manifest).encode()),
        ):
            _add(tar, tarfile.TarInfo(name), data)
    return f"sha256:{config_digest}"
