"""The upstream fault suite: every way CoreWeave's endpoint (or the network in
between) can fail, injected into the emulator while a healthy sidecar holds
keys.

For each fault the sidecar starts healthy, then the fault is made persistent,
and the test watches, as a user would:

* what is served: the cached key while it is valid (never a key from a bad
  answer, never an expired one), then 503 once it is within the expiry margin
  of its expiry; `/readyz` follows;
* the spacing of the upstream attempts after the first failed one (arrival
  times recorded by the emulator): each retry comes no sooner than the
  documented backoff allows (`--retry-initial` doubling to `--retry-max`,
  jitter taking at most half off; a rejected token waits 50-100% of
  `--retry-max`; `Retry-After` is honoured), and retries do happen (awaited,
  not counted in a fixed window: a loaded machine only spaces them out);
* the log line a user sees;
* recovery: once the fault clears, a fresh key is served.

Each fault runs in its own thread with its own emulator and sidecar, so the
whole file takes about half a minute. A table of what was measured (attempts
in WINDOW seconds, time to 503, recovery time) is printed for the notes;
those are figures, not assertions.
"""

import concurrent.futures
import dataclasses
import re
import sys
import time
import traceback
import unittest
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
import cwtest  # noqa: E402

import itest  # noqa: E402
from itest import body_json, rec, to_epoch  # noqa: E402

LIFETIME = 12             # seconds: keys renewed after ~3 s, 503 after ~10.8 s
MARGIN = LIFETIME / 10    # --expiry-margin 1m is capped at 10% of the lifetime
RETRY_INITIAL = 0.2
RETRY_MAX = 2.0
REJECTED_RETRY_MAX = 4.0  # rejected tokens wait --retry-max: longer, to tell them apart
EXCHANGE_TIMEOUT = 3.0
HANG = EXCHANGE_TIMEOUT + 2.5   # the emulator answers (too late) after this
RETRY_AFTER = 3
WINDOW = 8.0              # attempts are counted in [first failed attempt, + WINDOW)
POLL = 0.1                # how often the "SDK" asks for credentials
RECOVERY_TIMEOUT = 20
# Leeway for the first 503: the sidecar measures expiry from the answer's
# Date header (whole seconds) and its own arrival time.
EXPIRY_LEEWAY = 1.5


def duration_seconds(text):
    """`2s960ms` / `300ms` / `1m5s` -> seconds (the sidecar's format)."""
    total = 0.0
    for amount, unit in re.findall(r"(\d+)(ms|h|m|s)", text):
        total += int(amount) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    return total


# Recording jitter of the emulator's arrival times, in seconds.
SLACK = 0.05


def min_delay(failures, retry_initial, retry_max, rejected=False, retry_after=0.0):
    """The shortest wait the documented backoff allows after the `failures`-th
    failure in a row: half of its base (retry_initial doubling per failure,
    capped at retry_max; retry_max for a rejected token), never shorter than
    Retry-After."""
    base = retry_max if rejected else min(retry_initial * 2 ** (failures - 1), retry_max)
    return max(base / 2, retry_after)


def max_attempts(window, retry_initial, retry_max, rejected=False, retry_after=0.0):
    """Most attempts the documented backoff allows to start within `window`
    seconds of the first failed one (printed beside the count, as a figure)."""
    attempts, elapsed, failures = 1, 0.0, 0
    while True:
        failures += 1
        elapsed += min_delay(failures, retry_initial, retry_max, rejected, retry_after)
        if elapsed >= window:
            return attempts
        attempts += 1


@dataclasses.dataclass
class Fault:
    name: str
    inject: Optional[dict]      # set_fault(**inject); None: a custom injector
    log: str                    # regex of the log line a user sees
    bound: int                  # most attempts the backoff allows in WINDOW (printed, a figure)
    at_least: int = 2           # it does retry
    rejected: bool = False
    extra: tuple = ()
    hang: float = 0.0           # records appear this long after the attempt
    retry_max: float = RETRY_MAX
    retry_after: float = 0.0
    resent_by_curl: bool = False  # see _check_attempts


RETRYABLE_BOUND = max_attempts(WINDOW, RETRY_INITIAL, RETRY_MAX)
REJECTED_BOUND = max_attempts(WINDOW, RETRY_INITIAL, REJECTED_RETRY_MAX, rejected=True)
RETRY_AFTER_BOUND = max_attempts(WINDOW, RETRY_INITIAL, RETRY_MAX, retry_after=RETRY_AFTER)


def _status(code, **extra):
    # The emulator's body: google.rpc.Status with the code for the HTTP status.
    return dict(status=code, **extra)


FAULTS = [
    Fault("500", _status(500), r"warning exchange failed kind=retryable status=500 detail=\"HTTP 500: ",
          RETRYABLE_BOUND),
    Fault("502", _status(502), r"warning exchange failed kind=retryable status=502 detail=\"HTTP 502: ",
          RETRYABLE_BOUND),
    Fault("503", _status(503), r"warning exchange failed kind=retryable status=503 detail=\"HTTP 503: ",
          RETRYABLE_BOUND),
    Fault("504", _status(504), r"warning exchange failed kind=retryable status=504 detail=\"HTTP 504: ",
          RETRYABLE_BOUND),
    Fault("429", _status(429), r"warning exchange failed kind=retryable status=429 detail=\"HTTP 429: ",
          RETRYABLE_BOUND),
    Fault("429 Retry-After: %d" % RETRY_AFTER, _status(429, headers={"Retry-After": str(RETRY_AFTER)}),
          r"warning exchange failed kind=retryable status=429 .*retry_in=(?P<retry_in>\S+)",
          RETRY_AFTER_BOUND, retry_after=RETRY_AFTER),
    Fault("401", _status(401), r"error exchange failed kind=rejected status=401 detail=\"HTTP 401: ",
          REJECTED_BOUND, at_least=2, rejected=True, extra=("--retry-max", "%gs" % REJECTED_RETRY_MAX),
          retry_max=REJECTED_RETRY_MAX),
    Fault("403", _status(403), r"error exchange failed kind=rejected status=403 detail=\"HTTP 403: ",
          REJECTED_BOUND, at_least=2, rejected=True, extra=("--retry-max", "%gs" % REJECTED_RETRY_MAX),
          retry_max=REJECTED_RETRY_MAX),
    Fault("hang %gs > timeout %gs" % (HANG, EXCHANGE_TIMEOUT), dict(hang=HANG),
          r"warning exchange failed kind=retryable status=0 detail=\"Timeout was reached",
          RETRYABLE_BOUND, hang=HANG),
    Fault("connection reset", dict(reset=True),
          r"warning exchange failed kind=retryable status=0 detail=\"\S",
          RETRYABLE_BOUND, resent_by_curl=True),
    Fault("TLS: untrusted CA", None,
          r"warning exchange failed kind=retryable status=0 detail=\".*(SSL|certificate)",
          RETRYABLE_BOUND),
    Fault("malformed JSON", dict(malformed="json"),
          r"warning exchange failed kind=malformed status=200 detail=\"answer is not JSON\"",
          RETRYABLE_BOUND),
    Fault("missing field", dict(malformed="missing"),
          r"warning exchange failed kind=malformed status=200 detail=\"missing or empty SecretAccessKey\"",
          RETRYABLE_BOUND),
    Fault("expiry in the past", dict(malformed="past"),
          r"warning exchange failed kind=malformed status=200 detail=\"Expiration is already in the past\"",
          RETRYABLE_BOUND),
    Fault("expiry unparsable", dict(malformed="badtime"),
          r"warning exchange failed kind=malformed status=200 detail=\"Expiration is not an RFC 3339 time\"",
          RETRYABLE_BOUND),
    Fault("20 MB body", dict(malformed="huge"),
          r"warning exchange failed kind=malformed status=200 detail=\"answer larger than 65536 bytes\"",
          RETRYABLE_BOUND),
    Fault("slow body (1 B/0.5 s)", dict(malformed="slow"),
          r"warning exchange failed kind=retryable status=200 detail=\"Timeout was reached",
          RETRYABLE_BOUND),
]


@dataclasses.dataclass
class Measured:
    attempts: int = -1
    first_503_after_fault: Optional[float] = None   # seconds after the first failed attempt
    served_cached: int = 0                          # 200 answers with the cached key during the fault
    recovery: Optional[float] = None                # seconds from clearing the fault to a fresh key
    log_line: str = ""


class Scenario:
    """One fault against one healthy sidecar, start to finish."""

    def __init__(self, tc, fault: Fault):
        self.tc = tc
        self.fault = fault
        self.m = Measured()
        self.env = itest.Env(tc, lifetime=LIFETIME)
        self.token = self.env.write_token()
        self.bad_emulator = None  # the TLS case's stand-in with an unknown CA

    # -- what counts as an upstream attempt ----------------------------------
    def attempt_times(self):
        """Arrival times of the attempts that met the fault."""
        if self.bad_emulator is not None:
            return list(self.tls_failure_times)
        return sorted(to_epoch(rec(r, "time")) for r in self.env.emu.exchanges if rec(r, "fault"))

    def _sample_tls_failures(self):
        if self.bad_emulator is None:
            return
        seen = self.bad_emulator.tls_failures
        while len(self.tls_failure_times) < seen:
            self.tls_failure_times.append(time.time())

    # -- inject / clear -------------------------------------------------------
    def inject(self):
        if self.fault.inject is not None:
            self.env.emu.set_fault(**self.fault.inject)
            return
        # TLS: the same address now presents a certificate from a CA the
        # sidecar does not trust (a TLS-intercepting proxy, a wrong endpoint).
        self.tls_failure_times = []
        port = self.env.emu.port
        other = cwtest.Pki(str(self.env.tmp / "other-pki"))
        self.env.emu.stop()
        self.bad_emulator = cwtest.Emulator(other, self.env.issuer, lifetime=LIFETIME, port=port)
        self.tc.addCleanup(self.bad_emulator.stop)
        self.bad_emulator.start()

    def clear(self):
        if self.bad_emulator is None:
            self.env.emu.clear_faults()
            return
        self.bad_emulator.stop()
        self.env.emu.start()  # the trusted upstream, same address

    # -- the run --------------------------------------------------------------
    def run(self):
        f = self.fault
        args = ["--retry-initial", "%gms" % (RETRY_INITIAL * 1000), "--retry-max", "%gs" % RETRY_MAX,
                "--exchange-timeout", "%gs" % EXCHANGE_TIMEOUT]
        args += list(f.extra)  # later flags win
        sc = self.env.sidecar(self.env.args(extra=args, log_level="info"), timeout=20)
        self.sc = sc
        first = self.tc.assertCredentials(sc.get("/v1/credentials", token=self.token))

        self.mark = mark = sc.mark()
        t_fault = time.time()
        self.inject()
        # The first failed attempt is the scheduled renewal (~25% of the lifetime).
        samples = []  # (sent, received, status, key, expiration)
        t1 = None
        deadline = t_fault + LIFETIME + f.hang + 10
        good_key = good_expiry = None
        end = None
        while True:
            now = time.time()
            if now > deadline:
                raise AssertionError("%s: no failed attempt / window did not end in time (t1=%r)" % (f.name, t1))
            self._sample_tls_failures()
            if t1 is None:
                times = [t for t in self.attempt_times() if t >= t_fault - 0.5]
                if times:
                    t1 = self.t1 = times[0]
                    good_key, good_expiry = self._cached_key(first)
                    end = max(t1 + WINDOW, good_expiry - MARGIN + EXPIRY_LEEWAY + 1.0)
            sent = time.time()
            resp = sc.get("/v1/credentials", token=self.token, timeout=5)
            received = time.time()
            data = body_json(resp) if resp.status == 200 else None
            samples.append((sent, received, resp.status, data and data.get("AccessKeyId"),
                            data and to_epoch(data.get("Expiration"))))
            if end is not None and received >= end:
                break
            time.sleep(POLL)

        # The count needs every attempt of the window recorded (a hung one is
        # recorded when the emulator finally answers).
        if f.hang:
            itest.observe_until(t1 + WINDOW + f.hang + 1.0)
        self._sample_tls_failures()
        attempts = [t for t in self.attempt_times() if t1 <= t < t1 + WINDOW]
        self.m.attempts = len(attempts)
        self.observed = sorted(t for t in self.attempt_times() if t >= t1)

        self.m.log_line = sc.wait_for_log(f.log, timeout=10, start=mark)
        readyz_at_end = sc.get("/readyz").status
        self._check_served(samples, t1, good_key, good_expiry)
        self._check_attempts(good_expiry)
        self._check_log(sc, mark)
        self.tc.assertEqual(readyz_at_end, 503, "%s: /readyz after the cached key expired" % f.name)
        self.tc.assertEqual(sc.get("/healthz").status, 200, "%s: /healthz during the fault" % f.name)

        # Recovery: the fault clears, a fresh key is served.
        t_clear = time.time()
        self.clear()

        def fresh_key():
            resp = sc.get("/v1/credentials", token=self.token)
            if resp.status != 200:
                return None
            key = body_json(resp)["AccessKeyId"]
            return resp if key != good_key else None

        resp = itest.await_condition(fresh_key, timeout=RECOVERY_TIMEOUT, interval=0.05,
                                     what="%s: a fresh key after the fault cleared" % f.name)
        self.m.recovery = time.time() - t_clear
        data = self.tc.assertCredentials(resp)
        issued = {rec(r, "access_key_id") for r in self.env.emu.exchanges
                  if rec(r, "status") == 200 and not rec(r, "fault")}
        self.tc.assertIn(data["AccessKeyId"], issued, "%s: recovered key was not issued by a good answer" % f.name)
        self.tc.assertGreater(to_epoch(data["Expiration"]), time.time())
        self.tc.assertEqual(sc.get("/readyz").status, 200)
        self.tc.assertEqual(sc.stop(), 0, "%s: exit code after SIGTERM" % f.name)

    def _cached_key(self, first):
        """The key the sidecar holds when the fault starts, and its expiry
        (the scheduled renewal may have succeeded just before the fault)."""
        good = [r for r in self.env.emu.exchanges if rec(r, "status") == 200 and not rec(r, "fault")]
        record = good[-1] if good else None
        key = rec(record, "access_key_id") if record else first["AccessKeyId"]
        expiry = to_epoch(rec(record, "expiration")) if record else to_epoch(first["Expiration"])
        return key, expiry

    def _check_served(self, samples, t1, good_key, good_expiry):
        f = self.fault
        serve_until = good_expiry - MARGIN
        # The sidecar counts a key's end from when it sent the request, so a
        # slow exchange (a loaded machine, a sanitizer build) ends it that
        # much before the emulator's Expiration: allowed for, as logged.
        latencies = [int(m) for m in re.findall(r"exchange ok .*latency_ms=(\d+)", "\n".join(self.sc.lines))]
        leeway = EXPIRY_LEEWAY + max(latencies, default=0) / 1000
        for sent, received, status, key, expiration in samples:
            if status == 200:
                self.tc.assertEqual(key, good_key, "%s: served a key other than the cached one" % f.name)
                self.tc.assertGreater(expiration, received, "%s: served an expired key" % f.name)
                # Never within the margin: handed out before sent + MARGIN of
                # the key's end, and Expiration (whole seconds) is at most a
                # second before that end.
                self.tc.assertGreater(expiration - sent, MARGIN - 1.0,
                                      "%s: served %.2fs before Expiration, inside the %.1fs margin"
                                      % (f.name, expiration - sent, MARGIN))
                self.tc.assertLessEqual(received, good_expiry, "%s: 200 after the key expired" % f.name)
                if received >= t1:
                    self.m.served_cached += 1
            else:
                self.tc.assertEqual(status, 503, "%s: unexpected status %s" % (f.name, status))
                self.tc.assertGreaterEqual(
                    received, serve_until - leeway,
                    "%s: 503 at %.1fs before the cached key's serving deadline" % (f.name, serve_until - received))
        self.tc.assertGreater(self.m.served_cached, 0,
                              "%s: the cached key was not served after the first failure" % f.name)
        after = [r for _, r, s, _, _ in samples if s == 503 and r >= t1]
        self.tc.assertTrue(after, "%s: never answered 503 after the cached key's expiry" % f.name)
        self.m.first_503_after_fault = after[0] - t1

    def _check_attempts(self, good_expiry):
        f = self.fault
        # It does retry: awaited, however slow the machine.
        itest.await_condition(
            lambda: (self._sample_tls_failures(), len([t for t in self.attempt_times() if t >= self.t1]))[1]
            >= f.at_least, timeout=RECOVERY_TIMEOUT, interval=POLL,
            what="%s: %d attempts after the first failure" % (f.name, f.at_least))
        if self.bad_emulator is not None:
            # Failed handshakes are only seen when this test polls, so their
            # times are too coarse to judge the spacing by.
            return
        times = sorted(t for t in self.attempt_times() if t >= self.t1)
        if f.resent_by_curl:
            # libcurl sends a request again, at once and on a fresh
            # connection, when the reused connection it tried was reset: one
            # attempt of the sidecar, two arrivals at the emulator, which a
            # loaded machine (the sanitizer builds) can put far enough apart
            # to pass for two attempts. The sidecar logs each failed attempt
            # once; from one such line to the next is the backoff plus the
            # next attempt's own time, never less than the backoff.
            times = [to_epoch(line.split(" ", 1)[0]) for line in self.sc.lines[self.mark:]
                     if " exchange failed " in line]
        # One retry may come sooner than the backoff: the last one while the
        # cached key is still served (docs/operations.md, "Refresh and failure
        # behaviour"), so a recovering upstream is asked before it runs out.
        early = []
        for failure, (before, after) in enumerate(zip(times, times[1:]), start=1):
            least = min_delay(failure, RETRY_INITIAL, f.retry_max, f.rejected, f.retry_after)
            if after - before < least - SLACK:
                early.append((failure, before, after, least))
        self.tc.assertLessEqual(
            len(early), 1,
            "%s: retries sooner than the backoff allows: %s" % (
                f.name, ", ".join("retry %d after %.2fs (no less than %.2fs)" % (n, a - b, least)
                                  for n, b, a, least in early)))
        for failure, _, after, _ in early:
            self.tc.assertFalse(f.rejected or f.retry_after, "%s: retry %d came early" % (f.name, failure))
            self.tc.assertLess(
                after, good_expiry,
                "%s: retry %d came early, but after the cached key's expiry" % (f.name, failure))

    def _check_log(self, sc, mark):
        f = self.fault
        line = self.m.log_line
        self.tc.assertIn("serving=", line)
        if "retry_in" in f.log:
            retry_in = duration_seconds(re.search(f.log, line).group("retry_in"))
            self.tc.assertGreaterEqual(retry_in, RETRY_AFTER, "Retry-After not honoured: " + line)
        # The user is warned before the cached key runs out.
        sc.wait_for_log(r"warning credentials running low expires_in=", timeout=10, start=mark)
        # No secret in what the user sees.
        text = "\n".join(sc.lines)
        for r in self.env.emu.exchanges:
            secret = rec(r, "secret_access_key")
            if secret:
                self.tc.assertNotIn(secret, text)
            key_id = rec(r, "access_key_id")
            if key_id:
                self.tc.assertNotIn(key_id, text)
        self.tc.assertNotIn(self.token, text)


def _run_scenario(tc, fault):
    scenario = Scenario(tc, fault)
    try:
        scenario.run()
        return scenario, None
    except BaseException as exc:  # reported per fault below
        tail = ""
        try:
            tail = "\n".join(scenario.sc.lines[-25:])
        except Exception:
            pass
        return scenario, "%s\n%s\nsidecar log tail:\n%s" % (exc, traceback.format_exc(limit=3), tail)


def _table(results):
    rows = [("fault", "attempts/%gs" % WINDOW, "bound", "cached 200s", "503 after", "recovery", "log line")]
    for scenario, _ in results:
        m = scenario.m
        line = m.log_line.split(" ", 1)[1] if " " in m.log_line else m.log_line
        rows.append((
            scenario.fault.name,
            str(m.attempts),
            str(scenario.fault.bound),
            str(m.served_cached),
            "-" if m.first_503_after_fault is None else "%.1fs" % m.first_503_after_fault,
            "-" if m.recovery is None else "%.2fs" % m.recovery,
            line[:150],
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    out = []
    for r in rows:
        out.append("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1])
    return "\n".join(out)


class UpstreamFaults(itest.TestCase):
    def test_every_fault_serves_cached_keys_then_503_backs_off_and_recovers(self):
        """All faults in parallel, each against its own emulator and sidecar."""
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(FAULTS)) as pool:
            futures = [pool.submit(_run_scenario, self, fault) for fault in FAULTS]
            results = [future.result(timeout=170) for future in futures]
        sys.stderr.write(
            "\nupstream faults (lifetime %ds, margin %.1fs, retry %gms..%gs, exchange timeout %gs; "
            "'503 after' and attempts counted from the first failed attempt):\n%s\n"
            % (LIFETIME, MARGIN, RETRY_INITIAL * 1000, RETRY_MAX, EXCHANGE_TIMEOUT, _table(results)))
        for scenario, error in results:
            with self.subTest(fault=scenario.fault.name):
                if error:
                    self.fail(error)

    def test_wrong_ca_from_the_start_never_serves_and_backs_off(self):
        """--ca-file names a CA that did not sign the upstream's certificate:
        TLS verification fails, nothing is served, retries back off."""
        env = self.env()
        token = env.write_token()
        args = env.args(extra=["--retry-initial", "200ms", "--retry-max", "2s"], log_level="info")
        args[args.index("--ca-file") + 1] = str(env.pki.other_ca_file)
        sc = env.sidecar(args, wait_ready=False)
        line = sc.wait_for_log(r"exchange failed kind=retryable status=0 detail=\".*(SSL|certificate)", timeout=10)
        self.assertIn("serving=nothing", line)
        self.assertErrorBody(sc.get("/v1/credentials", token=token), 503)
        self.assertEqual(sc.get("/readyz").status, 503)
        # Backoff, by order: three more failed handshakes take at least the
        # three shortest delays the backoff allows (observed by polling, so
        # the first one may be seen late: one poll of slack).
        itest.await_condition(lambda: env.emu.tls_failures >= 1, timeout=5, what="a failed handshake")
        first_seen, counted_from = time.time(), env.emu.tls_failures
        itest.await_condition(lambda: env.emu.tls_failures >= counted_from + 3, timeout=RECOVERY_TIMEOUT,
                              interval=0.02, what="three more handshakes: it does retry")
        took = time.time() - first_seen
        least = sum(min_delay(n, 0.2, 2.0) for n in range(counted_from, counted_from + 3))
        self.assertGreaterEqual(took, least - 0.1, "three retries in %.2fs: no backoff" % took)
        self.assertEqual(env.emu.exchanges, [], "a request reached the upstream over unverified TLS")
        sys.stderr.write("\nwrong CA from the start: 3 retries took %.2fs (no less than %.2fs allowed); %s\n"
                         % (took, least, line.split(" ", 1)[1][:160]))


if __name__ == "__main__":
    unittest.main()
