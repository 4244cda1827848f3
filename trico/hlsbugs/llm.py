"""A bug detector backed by any OpenAI-compatible chat endpoint (hosted model or local server).

The prompt lives in prompts/detect_system.txt and prompts/detect_user.jinja; the model is asked for a
JSON object {"buggy": bool, "bugs": [{"type": CODE, "line": N}]}, parsed leniently from its reply.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import jinja2

from trico.errors import TricoError
from trico.hlsbugs.taxonomy import BUG_TYPES

PROMPTS = Path(__file__).parent / "prompts"


def render_messages(source: str, name: str) -> list[dict]:
    """The chat messages for one kernel file: system instructions + numbered source."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(PROMPTS), keep_trailing_newline=True, autoescape=False
    )
    numbered = "\n".join(f"{i:4d} | {ln}" for i, ln in enumerate(source.splitlines(), 1))
    user = env.get_template("detect_user.jinja").render(
        name=name, code=numbered, types=list(BUG_TYPES.values())
    )
    return [
        {"role": "system", "content": (PROMPTS / "detect_system.txt").read_text()},
        {"role": "user", "content": user},
    ]


_JSON_RE = re.compile(r"\{.*\}", re.S)


def parse_answer(reply: str) -> tuple[bool, list[tuple[str | None, int | None]], str | None]:
    """(buggy, [(type, line)], parse error) from a model reply; unknown types become None."""
    m = _JSON_RE.search(reply or "")
    if m is None:
        return False, [], "no JSON object in the reply"
    try:
        obj = json.loads(m.group(0))
    except json.JSONDecodeError as exc:
        return False, [], f"bad JSON: {exc}"
    if not isinstance(obj, dict):
        return False, [], "reply JSON is not an object"
    findings = []
    for bug in obj.get("bugs") or []:
        if not isinstance(bug, dict):
            continue
        code = str(bug.get("type", "")).upper()
        try:
            line = int(bug.get("line"))
        except (TypeError, ValueError):
            line = None
        findings.append((code if code in BUG_TYPES else None, line))
    buggy = bool(obj.get("buggy", bool(findings)))
    return buggy, findings, None


@dataclass
class ChatClient:
    """Minimal client of POST {base_url}/chat/completions."""

    base_url: str
    model: str
    api_key: str | None = None
    timeout: float = 120.0
    temperature: float = 0.0
    max_tokens: int = 512

    @classmethod
    def from_env(cls, base_url: str, model: str, key_env: str = "OPENAI_API_KEY", **kw) -> ChatClient:
        """A client whose API key (optional) comes from an environment variable."""
        return cls(base_url.rstrip("/"), model, os.environ.get(key_env), **kw)

    def complete(self, messages: list[dict]) -> str:
        """Send one chat request and return the first choice's text."""
        body = {
            "model": self.model,
            "messages": messages,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        req = urllib.request.Request(
            f"{self.base_url}/chat/completions",
            data=json.dumps(body).encode(),
            headers=headers,
            method="POST",
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                payload = json.loads(resp.read().decode())
        except urllib.error.HTTPError as exc:
            raise TricoError(
                f"LLM endpoint {self.base_url} answered HTTP {exc.code}: {exc.read()[:200]!r}"
            ) from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise TricoError(f"cannot reach LLM endpoint {self.base_url}: {exc}") from None
        except json.JSONDecodeError:
            raise TricoError(f"LLM endpoint {self.base_url} did not answer JSON") from None
        try:
            return payload["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            raise TricoError(
                f"LLM endpoint {self.base_url} answered without choices[0].message.content"
            ) from None
