"""The webhook and `cwcreds inject` agree on every real pod shape of
tests/fixtures/inject/corpus: one webhook over loopback TLS gets each Pod as
an AdmissionReview; its JSON Patch, applied here, must give exactly the Pod
that `cwcreds inject` writes with the same settings. Both routes share one
mutation, so a difference means one of them mangles what it reads or writes
(YAML scalars, JSON numbers, patch paths). Shapes marked `# expect: refused`
must be denials (HTTP 200, allowed false, a reason). The checks on inject's
output itself are in tests/manifests/corpus.test.mjs.

Reads the corpus with PyYAML (python3-yaml)."""

import base64
import copy
import json
import re
import subprocess
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
import cwtest  # noqa: E402
from webhook_client import UID, admit, review, start_webhook  # noqa: E402

try:
    import yaml
except ImportError:  # a failure, not a skip: the agreement would go unchecked
    yaml = None

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "inject" / "corpus"
# The settings start_webhook gives the webhook; inject gets the same. Every
# corpus Pod names its own org id, which wins over both.
SETTINGS = ["--org-id", "acme", "--image", "registry.example.com/cwcreds:0.1.0"]
SIDECAR = "cwcreds"


def pointer_tokens(path):
    if path == "":
        return []
    if not path.startswith("/"):
        raise ValueError("JSON Pointer without a leading '/': %r" % path)
    return [t.replace("~1", "/").replace("~0", "~") for t in path[1:].split("/")]


def apply_patch(document, patch):
    """RFC 6902 add, replace and remove (what the webhook sends); anything
    else, or a path that does not resolve, raises."""
    doc = copy.deepcopy(document)
    for op in patch:
        tokens = pointer_tokens(op["path"])
        if not tokens:
            raise ValueError("operation on the whole document: %r" % op)
        parent = doc
        for token in tokens[:-1]:
            parent = parent[int(token)] if isinstance(parent, list) else parent[token]
        last = tokens[-1]
        kind = op["op"]
        if isinstance(parent, list):
            if kind == "add":
                index = len(parent) if last == "-" else int(last)
                if not 0 <= index <= len(parent):
                    raise IndexError("add at %s: out of range" % op["path"])
                parent.insert(index, copy.deepcopy(op["value"]))
            elif kind == "replace":
                parent[int(last)] = copy.deepcopy(op["value"])
            elif kind == "remove":
                del parent[int(last)]
            else:
                raise ValueError("unsupported op %r" % kind)
        else:
            if kind == "add":
                parent[last] = copy.deepcopy(op["value"])
            elif kind == "replace":
                if last not in parent:
                    raise KeyError("replace at %s: no such member" % op["path"])
                parent[last] = copy.deepcopy(op["value"])
            elif kind == "remove":
                del parent[last]
            else:
                raise ValueError("unsupported op %r" % kind)
    return doc


def corpus_files():
    return sorted(CORPUS.glob("*.yaml"))


def refused(path):
    return re.search(r"^# expect: refused$", path.read_text(), re.M) is not None


def inject(path):
    done = subprocess.run([str(cwtest.cwcreds_bin()), "inject", *SETTINGS, "-f", str(path)],
                          capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout, done.stderr


def diff(a, b, where=""):
    """The first few places where two JSON values differ, for a message."""
    if type(a) is not type(b):
        return ["%s: %r != %r" % (where or "/", a, b)]
    if isinstance(a, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                out.append("%s/%s: only in %s" % (where, key, "the webhook's" if key in a else "inject's"))
            else:
                out += diff(a[key], b[key], "%s/%s" % (where, key))
        return out
    if isinstance(a, list):
        if len(a) != len(b):
            return ["%s: %d items != %d" % (where, len(a), len(b))]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in diff(x, y, "%s/%d" % (where, i))]
    return [] if a == b else ["%s: %r != %r" % (where, a, b)]


class Shim:
    """What start_webhook needs of a test case, for a webhook shared by the
    whole class: cleanups run when the class is done."""

    def __init__(self, cls):
        self.addCleanup = cls.addClassCleanup

    @staticmethod
    def assertTrue(value, message=None):
        if not value:
            raise AssertionError(message)


class WebhookCorpusTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if yaml is None:
            raise RuntimeError("PyYAML is not installed (python3-yaml): the corpus cannot be read")
        tmp = cwtest.TempDir()
        cls.addClassCleanup(tmp.cleanup)
        cls.pki = cwtest.Pki(tmp.path / "pki")
        cls.proc, cls.port, cls.log = start_webhook(Shim(cls), cls.pki.cert_file, cls.pki.key_file)

    def answer(self, pod):
        status, body, _ = admit(self.port, self.pki.ca_file, review(pod))
        self.assertEqual(status, 200, body)
        answer = json.loads(body)["response"]
        self.assertEqual(answer["uid"], UID)
        return answer

    def test_the_corpus_has_accepted_and_refused_shapes(self):
        files = corpus_files()
        self.assertGreaterEqual(len(files), 30)
        self.assertTrue(any(refused(f) for f in files))
        self.assertGreaterEqual(sum(not refused(f) for f in files), 25)

    def test_every_accepted_pod_is_patched_into_what_inject_writes(self):
        for path in corpus_files():
            if refused(path):
                continue
            with self.subTest(file=path.name):
                pod = yaml.safe_load(path.read_text())
                answer = self.answer(pod)
                self.assertTrue(answer["allowed"], "%s: denied: %s" % (path.name, answer.get("status")))
                self.assertEqual(answer.get("patchType"), "JSONPatch", path.name)
                patched = apply_patch(pod, json.loads(base64.b64decode(answer["patch"])))
                names = [c["name"] for c in patched["spec"].get("initContainers", []) + patched["spec"]["containers"]]
                self.assertIn(SIDECAR, names, "%s: no sidecar after the webhook's patch" % path.name)

                code, out, err = inject(path)
                self.assertEqual(code, 0, "%s: cwcreds inject failed: %s" % (path.name, err))
                written = yaml.safe_load(out)
                differences = diff(patched, written)
                self.assertEqual(differences, [], "%s: the webhook's patched Pod differs from inject's:\n  %s"
                                 % (path.name, "\n  ".join(differences[:20])))

    def test_every_refused_shape_is_a_denial_with_a_reason(self):
        for path in corpus_files():
            if not refused(path):
                continue
            with self.subTest(file=path.name):
                answer = self.answer(yaml.safe_load(path.read_text()))
                self.assertFalse(answer["allowed"], "%s: admitted, though it must be refused" % path.name)
                self.assertNotIn("patch", answer, path.name)
                message = answer.get("status", {}).get("message", "")
                self.assertRegex(message, r"^cwcreds cannot inject this pod: .{10,}", path.name)
                # The same reason as inject's, so both routes tell the owner the same thing.
                code, _, err = inject(path)
                self.assertEqual(code, 2, "%s: inject exit status" % path.name)
                self.assertIn(message.split(": ", 1)[1], err, path.name)

    def test_the_patch_applier_refuses_what_it_cannot_apply(self):
        # The comparison above is only as good as this applier: a wrong path
        # must fail loudly, not be skipped.
        doc = {"a": [1, 2], "b": {"c": 1}}
        self.assertEqual(apply_patch(doc, [{"op": "add", "path": "/a/-", "value": 3},
                                           {"op": "add", "path": "/a/0", "value": 0},
                                           {"op": "replace", "path": "/b/c", "value": 2},
                                           {"op": "remove", "path": "/a/1"},
                                           {"op": "add", "path": "/b/d~1e", "value": 4}]),
                         {"a": [0, 2, 3], "b": {"c": 2, "d/e": 4}})
        self.assertEqual(doc, {"a": [1, 2], "b": {"c": 1}}, "the input was changed")
        for bad in ({"op": "replace", "path": "/b/x", "value": 1}, {"op": "add", "path": "/a/5", "value": 1},
                    {"op": "move", "path": "/a/0", "from": "/b"}, {"op": "add", "path": "/x/y", "value": 1}):
            with self.assertRaises((KeyError, IndexError, ValueError), msg=bad):
                apply_patch(doc, [bad])


if __name__ == "__main__":
    unittest.main()
