"""weirtest — helpers for weir's integration tests (python3 stdlib only).

Starts real `weir` and `weir-pod` processes on 127.0.0.1 with free ports,
talks raw HTTP/1.1 over sockets, and stops only the processes it started
(by PID). Every wait is bounded in time. One module per concern:

  tap      check(), cases (@case, run()), done()
  cleanup  what a case started, stopped when it ends
  procs    processes: Proc, Weir, Pod, PodAt, ports, wait_for, holds_for
  http     raw HTTP/1.1 client (Conn, get) and scripted Upstream
  control  the control socket: status, weirctl, CtlConn
  load     steady request load (Load)
  dns      dnsmasq for discovery (Dnsmasq)
  files    atomic rewrites and ConfigMap volumes
  prom     Prometheus text parser, scrape()
  browser  headless Chromium and a PNG decoder
  routing  the sticky bucket, recomputed
  h2       HTTP/2 (h2c) client on python3-h2 and the gRPC wire format;
           not imported here: `from weirtest.h2 import H2Client, ...`

`from weirtest import *` gives every helper (and, as before the split, the
stdlib modules os, signal, socket, subprocess, sys, tempfile, time).

Environment: WEIR_BUILD (meson build dir), WEIR_SRC (source dir).
"""
import os  # noqa: F401  (re-exported: scripts rely on `from weirtest import *`)
import signal  # noqa: F401
import socket  # noqa: F401
import subprocess  # noqa: F401
import sys  # noqa: F401
import tempfile  # noqa: F401
import time  # noqa: F401

from .browser import CHROMIUM, chromium, png_pixels  # noqa: F401
from .cleanup import add as on_case_end  # noqa: F401
from .control import CtlConn, endpoint_addresses, endpoint_status, status, weirctl  # noqa: F401
from .dns import Dnsmasq  # noqa: F401
from .files import ConfigMapDir, write_atomic  # noqa: F401
from .http import (Conn, Response, ScriptedServer, Upstream, admin_get, get,  # noqa: F401
                   parse_head, read_exact, read_head)
from .load import Load  # noqa: F401
from .procs import (BUILD, SRC, WEIR, WEIR_POD, WEIRCTL, Pod, PodAt, Proc, Weir,  # noqa: F401
                    dead_address, endpoints_yaml, free_port, free_port_on, holds_for, stop_all,
                    tmpdir, wait_for, wait_port)
from .prom import parse_prom, prom_select, prom_sum, prom_value, scrape  # noqa: F401
from .routing import fnv1a_bucket  # noqa: F401
from .tap import case, check, done, run  # noqa: F401
