"""wrk, the load generator: one bounded run, its output parsed, and a Lua script pacing it to a rate.

Parts a, d and e of the benchmark drive the sidecar and nginx through these.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Optional


# wrk 4.1 (Debian) has no -R. This script paces it: each wrk thread hands out
# send slots INTERVAL ms apart (the script argument) on an absolute monotonic
# schedule, so timer slack and response time do not lower the rate as long as
# the thread has enough connections. Debian's wrk embeds LuaJIT, hence ffi.
PACED_LUA = """\
-- Paces wrk: each thread sends one request every INTERVAL ms (script argument).
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } cwbench_timespec;
int clock_gettime(int clock_id, cwbench_timespec *tp);
]]
local ts = ffi.new("cwbench_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts)  -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end
local interval, next_slot = 0, 0
function init(args) interval = tonumber(args[1]) or 0 end
function delay()
  local now = now_ms()
  -- Behind schedule: catch up on at most 10 ms of missed slots, never a long burst.
  if next_slot < now - 10 then next_slot = now - 10 end
  local wait = next_slot - now
  next_slot = next_slot + interval
  return math.max(0, math.floor(wait))
end
"""


def to_ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text).groups()
    return float(number) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4, "h": 3.6e6}[unit]

def parse_wrk(out: str) -> dict:
    def grab(pattern: str, convert=float):
        match = re.search(pattern, out, re.MULTILINE)
        return convert(match.group(1)) if match else None

    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    connect, read, write, timeout = (int(n) for n in errors.groups()) if errors else (0, 0, 0, 0)
    return {
        "requests": grab(r"(\d+) requests in", int),
        "rps": grab(r"Requests/sec:\s+([\d.]+)"),
        "p50": grab(r"^\s+50%\s+(\S+)", to_ms),
        "p99": grab(r"^\s+99%\s+(\S+)", to_ms),
        "socket_errors": connect + read + write,
        "error_detail": f"connect {connect}, read {read}, write {write}",
        "timeouts": timeout,
        "non2xx": grab(r"Non-2xx or 3xx responses: (\d+)", int) or 0,
    }


def run_wrk(url: str, connections: int, seconds: int, *, threads: int = 2, keep_alive: bool = True,
             headers: tuple = (), script: Optional[Path] = None, script_args: tuple = (),
             prefix: tuple = ()) -> dict:
    """One bounded wrk run; a result dict, with "failed" set when wrk gave no figures.
    `prefix` goes before wrk (e.g. taskset)."""
    command = [*prefix, "wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "2s"]
    for header in headers:
        command += ["-H", header]
    if not keep_alive:
        command += ["-H", "Connection: close"]
    if script is not None:
        command += ["-s", str(script)]
    command.append(url)
    if script_args:
        command += ["--", *[str(a) for a in script_args]]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30)
    except subprocess.TimeoutExpired:
        return {"failed": "wrk did not finish in time", "requests": None, "rps": None}
    result = parse_wrk(done.stdout)
    if done.returncode != 0 or result["requests"] is None:
        tail = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:] or ["no output"]
        result["failed"] = f"wrk exit {done.returncode}: {tail[0][:200]}"
    return result
