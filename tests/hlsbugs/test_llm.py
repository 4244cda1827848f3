"""The LLM detector end to end over HTTP, against a canned OpenAI-compatible server on loopback."""

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.hlsbugs.conftest import needs_gxx
from trico.cli import main
from trico.errors import TricoError
from trico.hlsbugs.dataset import GenConfig, generate
from trico.hlsbugs.detectors import make_detector
from trico.hlsbugs.evaluate import evaluate
from trico.hlsbugs.llm import ChatClient, parse_answer


class CannedChat(BaseHTTPRequestHandler):
    """Claims an OOB bug on the first numbered line holding `<=`; otherwise says the code is clean."""

    requests: list[dict] = []

    def do_POST(self):  # noqa: N802 (http.server naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        CannedChat.requests.append(
            {"path": self.path, "auth": self.headers.get("Authorization"), "body": body}
        )
        code = body["messages"][-1]["content"]
        m = re.search(r"^\s*(\d+) \|.*<= ", code, re.M)
        verdict = (
            {"buggy": True, "bugs": [{"type": "OOB", "line": int(m.group(1))}]}
            if m
            else {"buggy": False, "bugs": []}
        )
        answer = f"Here is my review.\n```json\n{json.dumps(verdict)}\n```"
        payload = json.dumps(
            {"choices": [{"index": 0, "message": {"role": "assistant", "content": answer}}]}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture()
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), CannedChat)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    CannedChat.requests = []
    yield f"http://127.0.0.1:{srv.server_address[1]}/v1"
    srv.shutdown()


def test_parse_answer_is_lenient_but_typed():
    assert parse_answer('x {"buggy": true, "bugs": [{"type": "oob", "line": "7"}, {"type": "??"}]} y') == (
        True,
        [("OOB", 7), (None, None)],
        None,
    )
    assert parse_answer("no idea")[2] == "no JSON object in the reply"


@needs_gxx
def test_llm_detector_scores_over_http(server, tmp_path, monkeypatch, capsys):
    out = tmp_path / "ds"
    generate(out, GenConfig(per_type=1, doubles=0, kernels=["axpy"], types=["OOB", "SMA"]), progress=False)
    monkeypatch.setenv("TRICO_TEST_KEY", "sk-test")
    det = make_detector("llm", base_url=server, model="canned-1", key_env="TRICO_TEST_KEY")
    res = evaluate(out, det, "all", jobs=1, progress=False)
    # axpy + its OOB variant + its SMA variant: one request each.
    assert len(CannedChat.requests) == 3
    req = CannedChat.requests[0]
    assert req["path"] == "/v1/chat/completions" and req["auth"] == "Bearer sk-test"
    assert req["body"]["model"] == "canned-1" and req["body"]["messages"][0]["role"] == "system"
    assert "   1 | " in req["body"]["messages"][1]["content"]
    assert res["per_type"]["OOB"] == {
        "category": "functional",
        "n": 1,
        "recall": 1.0,
        "typed_recall": 1.0,
        "type_precision": 1.0,
        "localization": 1.0,
        "region_localization": 1.0,
        "false_positive_clean": 0.0,
    }
    assert res["per_type"]["SMA"]["recall"] == 0.0
    assert res["precision"] == 1.0 and res["recall"] == 0.5 and res["false_positive_rate_clean"] == 0.0
    # The same run through the CLI.
    assert (
        main(
            [
                "hlsbugs",
                "evaluate",
                "--dataset",
                str(out),
                "--detector",
                "llm",
                "--base-url",
                server,
                "--model",
                "canned-1",
                "--split",
                "all",
                "--no-progress",
            ]
        )
        == 0
    )
    assert "| OOB | 1 | 1.0 | 1.0 | 1.0 | 1.0 | 1.0 | 0.0 |" in capsys.readouterr().out


def test_unreachable_endpoint_is_a_clear_error():
    client = ChatClient("http://127.0.0.1:9/v1", "m", timeout=2)
    with pytest.raises(TricoError, match="cannot reach LLM endpoint"):
        client.complete([{"role": "user", "content": "hi"}])
