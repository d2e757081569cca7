"""Judges: rule-based table, output parsers, the retry/fallback logic, and an OpenAI-compatible endpoint served
from 127.0.0.1 inside the test (success, malformed output, timeout, server down, cache, API key)."""

import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lit_videor2.judges import LLMJudge, OpenAIJudge, RuleBasedJudge
from lit_videor2.judges.prompts import NUDGE, parse_decision, parse_letter, parse_open_answer, parse_score


def W(think, answer):
    return f"<think>{think}</think><answer>{answer}</answer>"


OPTS = ["A. red", "B. blue", "C. green"]

# ------------------------------------------------------------------------------------------ rule-based


@pytest.mark.parametrize(
    "completion, options, concluded, final, consistent",
    [
        (W("It is blue, so the answer is B.", "B"), OPTS, "B", "B", True),  # agree
        (W("So the answer is C.", "(B)"), OPTS, "C", "B", False),  # disagree
        (W("The car is green.", "green"), OPTS, "C", "C", True),  # option text on both sides
        (W("no conclusion", "B"), OPTS, None, "B", False),  # nothing concluded
        ("<answer>B</answer>", OPTS, None, "B", False),  # missing think
        (W("We count 2 + 3, so the total is 5.", "5"), None, "5", "5", True),  # open numeric
    ],
)
def test_rule_based_judge(completion, options, concluded, final, consistent):
    judge = RuleBasedJudge()
    assert judge.concluded_answers([completion], [options]) == [concluded]
    assert judge.final_answers([completion], [options]) == [final]
    assert judge.consistency([completion], ["q"], [options]) == [consistent]


@pytest.mark.parametrize(
    "completion, low, high",
    [
        ("<answer>B</answer>", 0, 0),  # no think -> 0
        (W("I guess B.", "B"), 0, 1),  # no visual cues
        (
            W(
                "At 00:12 the video shows a red box on the left; then at 00:20 the man, next to it, lifts 3 boxes. "
                "Finally at 00:30 we see the blue car behind the tree, after the woman first appears.",
                "B",
            ),
            8,
            10,
        ),  # dense
    ],
)
def test_rule_based_grounding(completion, low, high):
    (score,) = RuleBasedJudge().grounding_scores([completion])
    assert low <= score <= high


# --------------------------------------------------------------------------------------------- parsers


@pytest.mark.parametrize(
    "parser, text, expected",
    [
        (parse_letter, "B", (True, "B")),  # letter
        (parse_letter, "(c)\nbecause", (True, "C")),  # first line only
        (parse_letter, "UNKNOWN", (True, None)),  # valid "no answer"
        (parse_letter, "I cannot tell", (False, None)),  # malformed
        (parse_open_answer, " 3.5 ", (True, "3.5")),  # open answer
        (parse_open_answer, "", (False, None)),  # empty is malformed
        (parse_score, 'sure: {"score": 7, "rationale": "x"}', (True, 7.0)),  # JSON in prose
        (parse_score, '{"score": 14}', (True, 10.0)),  # clamped
        (parse_score, '{"score": 6.6}', (True, 7.0)),  # rounded
        (parse_score, "seven", (False, 0.0)),  # malformed
        (parse_decision, "TRUE\nthey agree", (True, True)),  # verdict
        (parse_decision, "false", (True, False)),  # case-insensitive
        (parse_decision, "maybe", (False, False)),  # malformed
    ],
)
def test_parsers(parser, text, expected):
    assert parser(text) == expected


class ScriptedJudge(LLMJudge):
    """LLM judge whose backend replies from a function of the prompt; records what it was asked."""

    def __init__(self, reply):
        super().__init__()
        self.reply, self.prompts = reply, []

    def complete(self, requests):
        self.prompts += [r.messages[-1]["content"] for r in requests]
        return [self.reply(r.messages[-1]["content"]) for r in requests]


def test_llm_judge_retries_once_then_falls_back():
    judge = ScriptedJudge(lambda p: '{"score": 8}' if NUDGE in p else "garbage")
    assert judge.grounding_scores([W("x", "B")], ["q"]) == [8.0]  # malformed, retried with the nudge, parsed
    assert judge.stats["retries"] == 1 and judge.stats["fallbacks"] == 0
    always_bad = ScriptedJudge(lambda p: "garbage")
    assert always_bad.grounding_scores([W("x", "B")]) == [0.0]  # fallback 0 after one retry
    assert always_bad.consistency([W("x", "B")]) == [False]  # fallback False
    assert always_bad.concluded_answers([W("x", "B")], [OPTS]) == [None]  # fallback None
    assert len(always_bad.prompts) == 6 and always_bad.stats["fallbacks"] == 3  # 3 judgments x (1 + 1 retry)
    down = ScriptedJudge(lambda p: None)  # transport failure: no retry here (the backend retried), fallback
    assert down.consistency([W("x", "B")]) == [False] and len(down.prompts) == 1


def test_llm_judge_short_circuits_and_validates_letters():
    judge = ScriptedJudge(lambda p: "D")
    assert judge.grounding_scores(["<answer>B</answer>"]) == [0.0] and judge.prompts == []  # no think: 0, no call
    assert judge.concluded_answers([W("x", "B")], [OPTS]) == [None]  # D is not among options A-C
    assert judge.final_answers([W("x", "7 apples")], [None]) == ["D"]  # open-form: reply kept as text


# ----------------------------------------------------------------------------------- OpenAI-compatible


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep test output quiet
        pass

    def do_POST(self):
        server = self.server
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        server.seen.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        status, content, delay = server.behaviour(body["messages"][-1]["content"], len(server.seen))
        time.sleep(delay)
        payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.seen = []
    httpd.behaviour = lambda prompt, n: (200, "TRUE\nok", 0.0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _judge(server, **kw):
    kw.setdefault("timeout_s", 2.0)
    kw.setdefault("backoff_s", 0.01)
    return OpenAIJudge(model="judge-model", base_url=f"http://127.0.0.1:{server.server_address[1]}/v1", **kw)


def test_openai_success_with_key_from_env(server, monkeypatch, caplog):
    monkeypatch.setenv("JUDGE_TEST_KEY", "sk-secret-123")

    def behaviour(prompt, n):
        if "JSON" in prompt:
            return 200, '{"score": 9, "rationale": "specific"}', 0.0
        if "TRUE" in prompt:
            return 200, "TRUE\nsame conclusion", 0.0
        return 200, "B", 0.0

    server.behaviour = behaviour
    judge = _judge(server, api_key_env="JUDGE_TEST_KEY", max_concurrency=4)
    completions = [W("The video shows a blue car, so B.", "B")] * 3
    with caplog.at_level(logging.DEBUG):
        assert judge.grounding_scores(completions, ["q"] * 3) == [9.0] * 3
        assert judge.consistency(completions, ["q"] * 3) == [True] * 3
        assert judge.concluded_answers(completions, [OPTS] * 3) == ["B"] * 3
    seen = server.seen
    assert len(seen) == 9 and all(s["path"] == "/v1/chat/completions" for s in seen)
    assert all(s["auth"] == "Bearer sk-secret-123" for s in seen)  # key sent …
    assert "sk-secret" not in repr(judge) and "sk-secret" not in caplog.text  # … never shown
    grounding = next(s["body"] for s in seen if "JSON" in s["body"]["messages"][-1]["content"])
    assert grounding["model"] == "judge-model" and grounding["temperature"] == 0.7 and grounding["top_k"] == 20
    extract = next(s["body"] for s in seen if "capital letter" in s["body"]["messages"][-1]["content"])
    assert extract["temperature"] == 0.0  # extraction is deterministic


def test_openai_malformed_then_retry_then_fallback(server):
    server.behaviour = lambda prompt, n: (200, '{"score": 6}' if NUDGE in prompt else "no json here", 0.0)
    judge = _judge(server)
    assert judge.grounding_scores([W("x", "B")]) == [6.0]  # one retry with the nudge succeeds
    assert len(server.seen) == 2
    server.behaviour = lambda prompt, n: (200, "still not json", 0.0)
    assert judge.grounding_scores([W("x", "B")]) == [0.0]  # documented fallback after one retry
    assert len(server.seen) == 4


def test_openai_timeout_and_transient_errors(server):
    server.behaviour = lambda prompt, n: (200, "TRUE", 1.0)  # slower than the timeout
    judge = _judge(server, timeout_s=0.2, max_retries=1)
    assert judge.consistency([W("x", "B")]) == [False]  # timeout -> fallback (the auditor's 0)
    assert len(server.seen) == 2 and judge.stats["transport_failures"] == 1  # first try + one retry
    server.seen.clear()
    server.behaviour = lambda prompt, n: (503, "", 0.0) if n == 1 else (200, "TRUE", 0.0)
    assert _judge(server, max_retries=2).consistency([W("x", "B")]) == [True]  # 503 retried with backoff
    server.seen.clear()
    server.behaviour = lambda prompt, n: (400, "", 0.0)
    assert _judge(server, max_retries=2).consistency([W("x", "B")]) == [False] and len(server.seen) == 1  # no retry


def test_openai_server_down():
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    judge = OpenAIJudge(model="m", base_url=f"http://127.0.0.1:{port}/v1", timeout_s=0.5, max_retries=1, backoff_s=0.01)
    assert judge.grounding_scores([W("x", "B")]) == [0.0]
    assert judge.final_answers([W("x", "B")], [OPTS]) == [None]
    assert judge.stats["transport_failures"] == 2


def test_openai_disk_cache(server, tmp_path):
    server.behaviour = lambda prompt, n: (200, "TRUE", 0.0)
    judge = _judge(server, cache_dir=str(tmp_path / "cache"))
    assert judge.consistency([W("x", "B")]) == [True]
    fresh = _judge(server, cache_dir=str(tmp_path / "cache"))  # a new process would see the same files
    assert fresh.consistency([W("x", "B")]) == [True]
    assert len(server.seen) == 1 and fresh.stats["cache_hits"] == 1
    other_model = OpenAIJudge(model="other", base_url=fresh.base_url, cache_dir=str(tmp_path / "cache"))
    assert other_model.consistency([W("x", "B")]) == [True] and len(server.seen) == 2  # the model is in the key
