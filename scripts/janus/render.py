#!/usr/bin/env python3
"""Render Anteroom's Janus configuration into a folder and print the command that runs it.

    python scripts/janus/render.py --out /tmp/janus-conf --http-port 8088 --admin-port 7088 \
        --api-secret S1 --admin-secret S2 --room-admin-key S3 [--ice-enforce-list eth0]

The folder gets janus.jcfg, janus.plugin.videoroom.jcfg, janus.transport.http.jcfg and
``plugins/`` + ``transports/`` holding links to only the VideoRoom plugin and the HTTP
transport of the installed Janus (so nothing else is loaded). Stdlib only: tests import it.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import string
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TEMPLATES = ("janus.jcfg", "janus.plugin.videoroom.jcfg", "janus.transport.http.jcfg")
LIB_DIRS = (
    "/usr/lib/x86_64-linux-gnu/janus",
    "/usr/lib/aarch64-linux-gnu/janus",
    "/usr/lib/janus",
    "/opt/janus/lib/janus",
    "/usr/local/lib/janus",
)


def janus_lib_dir() -> Path:
    """The installed Janus's module folder (the one holding plugins/libjanus_videoroom.so)."""
    for base in (os.environ.get("JANUS_LIB_DIR", ""), *LIB_DIRS, *glob.glob("/usr/lib/*/janus")):
        if base and Path(base, "plugins", "libjanus_videoroom.so").exists():
            return Path(base)
    raise FileNotFoundError("Janus modules not found (apt-get install janus, or set JANUS_LIB_DIR)")


def render(
    out: Path,
    *,
    http_port: int,
    admin_port: int,
    api_secret: str,
    admin_secret: str,
    room_admin_key: str,
    http_ip: str = "127.0.0.1",
    admin_ip: str = "127.0.0.1",
    ice_enforce_list: str = "",
    rtp_port_range: str = "20000-40000",
    allow_origin: str = "",
    debug_level: int = 4,
) -> Path:
    """Write the configuration into ``out`` (created) and return the janus.jcfg path."""
    for name, value in (
        ("api_secret", api_secret),
        ("admin_secret", admin_secret),
        ("room_admin_key", room_admin_key),
    ):
        if not value or '"' in value or "\\" in value:
            raise ValueError(f"{name} must be a non-empty string without quotes or backslashes")
    lib = janus_lib_dir()
    out.mkdir(parents=True, exist_ok=True)
    for sub, keep in (("plugins", "libjanus_videoroom.so"), ("transports", "libjanus_http.so")):
        folder = out / sub
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        (folder / keep).symlink_to(lib / sub / keep)
    for sub in ("events", "loggers"):
        (out / sub).mkdir(exist_ok=True)
    values = {
        "CONFIGS_FOLDER": str(out),
        "PLUGINS_FOLDER": str(out / "plugins"),
        "TRANSPORTS_FOLDER": str(out / "transports"),
        "EVENTS_FOLDER": str(out / "events"),
        "LOGGERS_FOLDER": str(out / "loggers"),
        "DEBUG_LEVEL": str(debug_level),
        "API_SECRET": api_secret,
        "ADMIN_SECRET": admin_secret,
        "ROOM_ADMIN_KEY": room_admin_key,
        "RTP_PORT_RANGE": rtp_port_range,
        "ICE_ENFORCE_LIST": ice_enforce_list,
        "HTTP_PORT": str(http_port),
        "HTTP_IP": http_ip,
        "ADMIN_PORT": str(admin_port),
        "ADMIN_IP": admin_ip,
        "CORS_LINE": f'allow_origin = "{allow_origin}"' if allow_origin else "",
    }
    for name in TEMPLATES:
        text = string.Template((HERE / f"{name}.in").read_text()).substitute(values)
        if not ice_enforce_list and name == "janus.jcfg":
            text = text.replace('\tice_enforce_list = ""\n', "")
        (out / name).write_text(text)
        (out / name).chmod(0o600)  # holds the secrets
    return out / "janus.jcfg"


def command(conf: Path) -> list[str]:
    """The Janus command line for a rendered folder (foreground, log to stdout)."""
    return [shutil.which("janus") or "janus", "-C", str(conf), "-F", str(conf.parent)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--http-port", type=int, default=8088)
    p.add_argument("--http-ip", default="127.0.0.1")  # behind the reverse proxy
    p.add_argument("--admin-port", type=int, default=7088)
    p.add_argument("--admin-ip", default="127.0.0.1")
    p.add_argument("--api-secret", default=os.environ.get("ANTEROOM_JANUS_API_SECRET", ""))
    p.add_argument("--admin-secret", default=os.environ.get("ANTEROOM_JANUS_ADMIN_SECRET", ""))
    p.add_argument("--room-admin-key", default=os.environ.get("ANTEROOM_JANUS_ROOM_ADMIN_KEY", ""))
    p.add_argument("--ice-enforce-list", default="")
    p.add_argument("--rtp-port-range", default="20000-40000")
    p.add_argument("--allow-origin", default="")
    p.add_argument("--debug-level", type=int, default=4)
    a = p.parse_args(argv)
    conf = render(
        a.out,
        http_port=a.http_port,
        http_ip=a.http_ip,
        admin_port=a.admin_port,
        admin_ip=a.admin_ip,
        api_secret=a.api_secret,
        admin_secret=a.admin_secret,
        room_admin_key=a.room_admin_key,
        ice_enforce_list=a.ice_enforce_list,
        rtp_port_range=a.rtp_port_range,
        allow_origin=a.allow_origin,
        debug_level=a.debug_level,
    )
    print(" ".join(command(conf)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
