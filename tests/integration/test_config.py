"""Configuration errors are caught at startup with exit code 2 and a message
naming the culprit; environment variables work as flags do, and a flag wins
over its environment variable; --version and help answer."""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
import cwtest  # noqa: E402

import itest  # noqa: E402
from itest import CONTAINER, rec  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]

# A bad configuration must be refused at once; a process still running after
# this long has accepted it.
REFUSE_TIMEOUT = 5

CONTRACT_FLAGS = [
    "--token-file", "--org-id", "--endpoint", "--exchange", "--duration", "--ca-file",
    "--listen", "--allow-non-loopback", "--client-token-file", "--allow-unauthenticated",
    "--log-format", "--log-level",
]
TUNING_FLAGS = [
    "--refresh-fraction", "--refresh-jitter", "--expiry-margin", "--retry-initial",
    "--retry-max", "--connect-timeout", "--exchange-timeout", "--startup-wait",
    "--token-poll", "--max-connections",
]


def clean_env(**extra):
    """The test process's environment without any CWCREDS_* setting, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CWCREDS_")}
    env.update(extra)
    return env


class ConfigErrors(itest.TestCase):
    def setUp(self):
        super().setUp()
        self.tmp = Path(tempfile.mkdtemp(prefix="cwcreds-config-"))
        self.addCleanup(shutil.rmtree, str(self.tmp), True)
        self.token_file = self.tmp / "token"
        self.token_file.write_text("x.y.z")

    def base(self):
        return ["serve", "--token-file", str(self.token_file),
                "--endpoint", "https://127.0.0.1:9/v1/cwobject/temporary-credentials/oidc/x",
                "--listen", "127.0.0.1:0"]

    def run_refused(self, args, env=None):
        try:
            proc = cwtest.run_cwcreds(args, env=clean_env(**(env or {})), timeout=REFUSE_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.fail("cwcreds %s accepted the configuration (still running)" % " ".join(args))
        self.assertEqual(proc.returncode, 2, "stdout=%r stderr=%r" % (proc.stdout, proc.stderr))
        return proc

    def assertRefusedNaming(self, args, names, env=None):
        proc = self.run_refused(args, env=env)
        self.assertTrue(any(n in proc.stderr for n in names),
                        "stderr does not name %s: %r" % (" or ".join(names), proc.stderr))
        return proc

    def test_unknown_flag(self):
        self.assertRefusedNaming(self.base() + ["--nope"], ["--nope"])

    def test_bad_duration(self):
        self.assertRefusedNaming(self.base() + ["--retry-max", "5x"], ["--retry-max"])

    def test_bad_listen_address(self):
        args = self.base()
        args[args.index("--listen") + 1] = "nohost"
        self.assertRefusedNaming(args, ["--listen"])

    def test_plain_http_endpoint_on_a_non_loopback_host(self):
        args = self.base()
        args[args.index("--endpoint") + 1] = "http://example.com/x"
        self.assertRefusedNaming(args, ["--endpoint"])

    def test_non_loopback_listen_without_allow_non_loopback(self):
        args = self.base()
        args[args.index("--listen") + 1] = "0.0.0.0:9911"
        self.assertRefusedNaming(args, ["--listen", "--allow-non-loopback"])

    def test_neither_org_id_nor_endpoint(self):
        args = ["serve", "--token-file", str(self.token_file), "--listen", "127.0.0.1:0"]
        self.assertRefusedNaming(args, ["--org-id", "--endpoint"])

    def test_oidc_mode_without_org_id(self):
        self.assertRefusedNaming(self.base() + ["--exchange", "oidc"], ["--org-id"])

    def test_duration_over_12h(self):
        args = self.base() + ["--exchange", "oidc", "--org-id", "org", "--duration", "13h"]
        self.assertRefusedNaming(args, ["--duration"])

    def test_duration_in_container_credentials_mode_says_keys_are_15_minutes(self):
        proc = self.assertRefusedNaming(self.base() + ["--duration", "1h30m"], ["--duration"])
        self.assertIn("15 minutes", proc.stderr)
        self.assertIn("--exchange oidc", proc.stderr)
        self.assertRefusedNaming(self.base(), ["CWCREDS_DURATION"], env={"CWCREDS_DURATION": "2h"})

    def test_placeholders_are_refused_naming_their_source(self):
        args = ["serve", "--token-file", str(self.token_file), "--listen", "127.0.0.1:0"]
        proc = self.assertRefusedNaming(args + ["--org-id", "<ORG-ID>"], ["--org-id"])
        self.assertIn("placeholder", proc.stderr)
        proc = self.assertRefusedNaming(args, ["CWCREDS_ORG_ID"], env={"CWCREDS_ORG_ID": "REPLACE-WITH-ORG-ID"})
        self.assertIn("placeholder", proc.stderr)
        proc = self.assertRefusedNaming(["inject", "--org-id", "REPLACE-WITH-ORG-ID", "--image", "r.example/c:1"],
                                        ["--org-id"])
        self.assertIn("placeholder", proc.stderr)
        self.assertNotIn("annotation", proc.stderr)

    def test_inject_and_webhook_need_an_image(self):
        proc = self.assertRefusedNaming(["inject", "--org-id", "acme"], ["--image"])
        self.assertIn("registry", proc.stderr)
        self.assertRefusedNaming(["webhook", "--tls-cert-file", "/c", "--tls-key-file", "/k"], ["--image"])

    def test_bad_log_level(self):
        self.assertRefusedNaming(self.base() + ["--log-level", "loud"], ["--log-level"])

    def test_bad_exchange_mode(self):
        self.assertRefusedNaming(self.base() + ["--exchange", "grpc"], ["--exchange"])

    def test_environment_variables_are_checked_like_flags(self):
        cases = [
            ("CWCREDS_RETRY_MAX", "5x", "--retry-max"),
            ("CWCREDS_LOG_LEVEL", "loud", "--log-level"),
            ("CWCREDS_LISTEN", "nohost", "--listen"),
            ("CWCREDS_EXCHANGE", "grpc", "--exchange"),
        ]
        for var, value, flag in cases:
            with self.subTest(var=var):
                args = [a for a in self.base()]
                if flag in args:
                    i = args.index(flag)
                    del args[i:i + 2]
                self.assertRefusedNaming(args, [var, flag], env={var: value})


class EnvironmentAndFlags(itest.TestCase):
    def test_configuration_from_environment_only(self):
        env = self.env()
        token = env.write_token()
        sc = env.sidecar([], env=clean_env(
            CWCREDS_TOKEN_FILE=env.tokdir.path,
            CWCREDS_ENDPOINT=env.emu.url_container(),
            CWCREDS_CA_FILE=env.pki.ca_file,
        ))
        data = self.assertCredentials(sc.get("/v1/credentials", token=token))
        self.assertEqual(data["AccessKeyId"], rec(env.emu.successful_exchanges()[-1], "access_key_id"))

    def test_flag_wins_over_its_environment_variable(self):
        env = self.env()
        token = env.write_token()
        sc = env.sidecar(env.args(CONTAINER), env=clean_env(
            CWCREDS_ENDPOINT="https://127.0.0.1:9/not-the-emulator",
            CWCREDS_TOKEN_FILE=str(env.tmp / "not-the-token"),
        ))
        data = self.assertCredentials(sc.get("/v1/credentials", token=token))
        self.assertEqual(data["AccessKeyId"], rec(env.emu.successful_exchanges()[-1], "access_key_id"))

    def test_an_invalid_environment_value_overridden_by_its_flag_does_not_matter(self):
        env = self.env()
        token = env.write_token()
        sc = env.sidecar(env.args(CONTAINER, extra=["--retry-max", "5s"]),
                         env=clean_env(CWCREDS_RETRY_MAX="5x"))
        self.assertCredentials(sc.get("/v1/credentials", token=token))


class VersionAndHelp(itest.TestCase):
    def test_version(self):
        proc = cwtest.run_cwcreds(["--version"], env=clean_env())
        self.assertEqual(proc.returncode, 0, proc.stderr)
        # Exactly the version CMakeLists.txt's project() declares.
        declared = re.search(r"project\(cwcreds VERSION (\S+)", (ROOT / "CMakeLists.txt").read_text()).group(1)
        self.assertEqual(proc.stdout.strip(), "cwcreds " + declared)

    def _help_lists_every_flag(self, args):
        proc = cwtest.run_cwcreds(args, env=clean_env())
        self.assertEqual(proc.returncode, 0, proc.stderr)
        text = proc.stdout + proc.stderr
        missing = [f for f in CONTRACT_FLAGS + TUNING_FLAGS
                   if not re.search(re.escape(f) + r"(?![\w-])", text)]
        self.assertEqual(missing, [], "help does not mention these flags")
        return text

    def test_serve_help_lists_every_flag(self):
        self._help_lists_every_flag(["serve", "--help"])

    def test_help_lists_subcommands_and_points_to_each_one(self):
        proc = cwtest.run_cwcreds(["help"], env=clean_env())
        self.assertEqual(proc.returncode, 0, proc.stderr)
        text = proc.stdout
        missing = [sub for sub in ("serve", "exchange", "credential-process", "inspect", "inject", "webhook")
                   if not re.search(r"(?m)^\s*" + re.escape(sub) + r"\b", text)]
        self.assertEqual(missing, [], "`cwcreds help` does not list these subcommands")
        self.assertIn("cwcreds help <command>", text)
        # The most used flags, not serve's tuning knobs.
        self.assertIn("--org-id", text)
        self.assertNotIn("--max-connections", text)

    def test_help_sub_prints_what_sub_help_prints(self):
        for sub in ("serve", "exchange", "credential-process", "inspect", "inject", "webhook"):
            with self.subTest(sub=sub):
                by_help = cwtest.run_cwcreds(["help", sub], env=clean_env())
                by_flag = cwtest.run_cwcreds([sub, "--help"], env=clean_env())
                self.assertEqual(by_help.returncode, 0, by_help.stderr)
                self.assertEqual(by_help.stdout, by_flag.stdout)
                self.assertIn("Usage: cwcreds " + sub, by_help.stdout)

    def test_typos_get_the_nearest_name(self):
        proc = cwtest.run_cwcreds(["serv"], env=clean_env())
        self.assertEqual(proc.returncode, 2)
        self.assertIn("did you mean serve?", proc.stderr)
        proc = cwtest.run_cwcreds(["serve", "--org-idd", "acme"], env=clean_env())
        self.assertEqual(proc.returncode, 2)
        self.assertIn("did you mean --org-id?", proc.stderr)
        proc = cwtest.run_cwcreds(["help", "completion"], env=clean_env())
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("cwcreds completion bash|zsh", proc.stdout)
        proc = cwtest.run_cwcreds(["help", "injct"], env=clean_env())
        self.assertEqual(proc.returncode, 2)
        self.assertIn("did you mean inject?", proc.stderr)

    def test_bash_completion_script_sources(self):
        bash = shutil.which("bash")
        if bash is None:
            self.skipTest("no bash")
        script = ('source <("$CWCREDS_BIN" completion bash) && complete -p cwcreds && '
                  'COMP_WORDS=(cwcreds inspect --sid) COMP_CWORD=2 && _cwcreds && echo "${COMPREPLY[@]}"')
        proc = subprocess.run([bash, "-c", script], env=clean_env(CWCREDS_BIN=str(cwtest.cwcreds_bin())),
                              capture_output=True, text=True, timeout=30)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("complete -o filenames -F _cwcreds cwcreds", proc.stdout)
        self.assertEqual(proc.stdout.splitlines()[-1], "--sidecar")

    def test_zsh_completion_script_parses(self):
        zsh = shutil.which("zsh")
        if zsh is None:
            self.skipTest("zsh is not installed (the unit test checks the script's content)")
        # Loaded as a user's .zshrc would (compinit, then the script), zsh
        # must register it for cwcreds, without a word on stderr.
        script = cwtest.run_cwcreds(["completion", "zsh"]).stdout
        proc = subprocess.run([zsh, "-f", "-c",
                               'autoload -Uz compinit && compinit -u -D && eval "$1" && print -r -- ${_comps[cwcreds]}',
                               "zsh", script],
                              capture_output=True, text=True, timeout=30)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stderr, "")
        self.assertEqual(proc.stdout.strip(), "_cwcreds")

if __name__ == "__main__":
    unittest.main()
