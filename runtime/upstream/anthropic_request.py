"""A Chat Completions request as an Anthropic Messages request.

- `system` / `developer` messages become `system` (text blocks, `cache_control` kept);
- user content: text parts, `image_url` parts (a base64 `data:` URL becomes a base64 source,
  a PDF one a `document`; an http(s) URL a `url` source);
- assistant `tool_calls` become `tool_use` blocks (the `arguments` JSON string becomes the
  `input` object: anything but a JSON object is a 400); an assistant's thinking, as the
  gateway answered it (`thinking_blocks`, or `thinking` / `redacted_thinking` content parts),
  goes back as thinking blocks, first in the turn with their signatures (with `thinking` on,
  Anthropic refuses a tool loop's next turn without them); `tool` messages become `tool_result`
  blocks of a user turn; consecutive turns of one role merge into one (Anthropic wants the
  results of parallel calls together, first in the user turn that follows the calls);
- `tools`, `tool_choice` (`required` -> `any`), `parallel_tool_calls: false`,
  `temperature`, `top_p`, `stop` -> `stop_sequences`, `user` (else `safety_identifier`)
  -> `metadata.user_id`, and Anthropic's own `top_k` and `thinking` when a client sends them;
- `max_tokens`: Anthropic requires it. `max_completion_tokens`, else `max_tokens`, else the
  integration setting `default_max_tokens`, else DEFAULT_MAX_TOKENS (4096: every current
  Claude model can write that much; the gateway reserves budget for it the same way),
  added to `thinking.budget_tokens` when that budget is not below it.

What Messages cannot express (n > 1, JSON response formats, audio or file parts, legacy
function calls, log probabilities, audio output, predicted outputs, penalties, token
biases, seeds, `reasoning_effort`, `verbosity`, web search options) is refused with a 400
naming the field, never silently dropped; a routing config's `drop_params` leaves such a
field out for an Anthropic target (a fallback from an OpenAI one).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from runtime.bundle.errors import clip
from runtime.bundle.money import MAX_TOKENS
from runtime.upstream.base import Unsupported

DEFAULT_MAX_TOKENS = 4096
_COPIED = ("temperature", "top_p", "top_k", "thinking")
# what Messages has no form for, with what to do instead: refused when set (not when null,
# false or empty, which some clients send as defaults; `modalities: ["text"]` is the default)
_NOT_SENT = (
    ("functions", "use `tools` (legacy function calling)"),
    ("function_call", "use `tool_choice` (legacy function calling)"),
    ("logprobs", "Anthropic returns no log probabilities"),
    ("top_logprobs", "Anthropic returns no log probabilities"),
    ("modalities", "Anthropic answers in text only"),
    ("audio", "Anthropic answers in text only"),
    ("prediction", "Anthropic has no predicted outputs"),
    ("frequency_penalty", "Anthropic has no repetition penalties"),
    ("presence_penalty", "Anthropic has no repetition penalties"),
    ("logit_bias", "Anthropic has no token biases"),
    ("reasoning_effort", "use `thinking` with a `budget_tokens`"),
    ("verbosity", "say how long to answer in the prompt"),
    ("web_search_options", "Anthropic's web search is a server tool: use /v1/messages"),
)
# what changes nothing in the answer, left out: `metadata`, `store` (OpenAI's stored
# completions), `service_tier`, `prompt_cache_key` (OpenAI's cache routing hint)
_DROP_HINT = "; a routing config can leave it out for this target (`drop_params`)"
_REFUSAL = "refusal"
_THINKING = ("thinking", "redacted_thinking")
_EMPTY_SCHEMA = {"type": "object", "properties": {}}


def to_messages(
    body: Mapping[str, Any], settings: Mapping[str, str], stream: bool
) -> dict[str, Any]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise Unsupported("`messages` must be a non-empty list")
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, Mapping):
            raise Unsupported(f"`{where}` must be an object")
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend(_texts(message.get("content"), where))
        elif role == "user":
            _append(turns, "user", _user_content(message.get("content"), where))
        elif role == "assistant":
            _append(turns, "assistant", _assistant_content(message, where))
        elif role == "tool":
            _append(turns, "user", [_tool_result(message, where)])
        else:
            raise Unsupported(f"`{where}.role` `{_name(role)}` cannot be sent to Anthropic")
    out: dict[str, Any] = {"model": body.get("model"), "messages": turns}
    out["max_tokens"] = _max_tokens(body, settings)
    if system:
        plain = len(system) == 1 and set(system[0]) == {"type", "text"}
        out["system"] = system[0]["text"] if plain else system
    _sampling(body, out)
    _tools(body, out)
    if stream:
        out["stream"] = True
    return out


def _append(turns: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    if not blocks:
        return  # an assistant turn with neither text nor calls says nothing
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"].extend(blocks)
    else:
        turns.append({"role": role, "content": blocks})


def _texts(content: Any, where: str) -> list[dict[str, Any]]:
    """Text-only content (system messages, tool results) as text blocks."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise Unsupported(f"`{where}.content` must be a string or a list of parts")
    return [_text_part(part, f"{where}.content[{j}]") for j, part in enumerate(content)]


def _text_part(part: Any, where: str) -> dict[str, Any]:
    if not isinstance(part, Mapping) or part.get("type") != "text":
        kind = part.get("type") if isinstance(part, Mapping) else None
        raise Unsupported(f"`{where}`: only text parts are allowed here, found `{_name(kind)}`")
    text = part.get("text")
    if not isinstance(text, str):
        raise Unsupported(f"`{where}.text` must be a string")
    block: dict[str, Any] = {"type": "text", "text": text}
    if isinstance(part.get("cache_control"), Mapping):
        block["cache_control"] = dict(part["cache_control"])
    return block


def _user_content(content: Any, where: str) -> list[dict[str, Any]]:
    if content is None or isinstance(content, str):
        return _texts(content, where)
    if not isinstance(content, list):
        raise Unsupported(f"`{where}.content` must be a string or a list of parts")
    blocks = []
    for j, part in enumerate(content):
        here = f"{where}.content[{j}]"
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind == "image_url":
            blocks.append(_image(part, here))
        elif kind == "text":
            blocks.append(_text_part(part, here))
        else:
            raise Unsupported(f"`{here}`: content part `{_name(kind)}` cannot be sent to Anthropic")
    return blocks


def _image(part: Mapping[str, Any], where: str) -> dict[str, Any]:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, Mapping) else image
    if not isinstance(url, str):
        raise Unsupported(f"`{where}.image_url.url` must be a string")
    block: dict[str, Any]
    if url[:5].lower() == "data:":
        header, comma, data = url[5:].partition(",")
        media, _, encoding = header.partition(";")
        if not comma or encoding.lower() != "base64" or "/" not in media:
            raise Unsupported(f"`{where}.image_url.url` must be `data:<type>;base64,...`")
        kind = "document" if media.lower() == "application/pdf" else "image"
        block = {"type": kind, "source": {"type": "base64", "media_type": media, "data": data}}
    elif url[:8].lower() == "https://" or url[:7].lower() == "http://":
        block = {"type": "image", "source": {"type": "url", "url": url}}
    else:
        raise Unsupported(f"`{where}.image_url.url` must be an http(s) or a base64 data URL")
    if isinstance(part.get("cache_control"), Mapping):
        block["cache_control"] = dict(part["cache_control"])
    return block


def _assistant_content(message: Mapping[str, Any], where: str) -> list[dict[str, Any]]:
    if message.get("function_call") is not None:
        raise Unsupported(f"`{where}.function_call` cannot be sent to Anthropic: use tool_calls")
    blocks = _thinking_blocks(message.get("thinking_blocks"), f"{where}.thinking_blocks")
    content = message.get("content")
    texts: list[dict[str, Any]] = []
    if isinstance(content, list):
        for j, part in enumerate(content):
            here = f"{where}.content[{j}]"
            kind = part.get("type") if isinstance(part, Mapping) else None
            if kind in _THINKING:
                blocks.append(_thinking(part, here))
            elif kind != _REFUSAL:  # refusal parts carry no text to replay
                texts.append(_text_part(part, here))
    else:
        texts = _texts(content, where)
    blocks.extend(b for b in texts if b["text"])  # empty text blocks are refused
    calls = message.get("tool_calls")
    if calls is None:
        return blocks
    if not isinstance(calls, list):
        raise Unsupported(f"`{where}.tool_calls` must be a list")
    blocks.extend(_tool_use(call, f"{where}.tool_calls[{k}]") for k, call in enumerate(calls))
    return blocks


def _thinking_blocks(given: Any, where: str) -> list[dict[str, Any]]:
    if given is None:
        return []
    if not isinstance(given, list):
        raise Unsupported(f"`{where}` must be a list")
    return [_thinking(block, f"{where}[{k}]") for k, block in enumerate(given)]


def _thinking(block: Any, where: str) -> dict[str, Any]:
    """A thinking block as Anthropic gave it, its fields checked: it goes back verbatim
    (Anthropic checks the signature, so nothing in it may change)."""
    kind = block.get("type") if isinstance(block, Mapping) else None
    if kind == "thinking":
        text, signature = block.get("thinking"), block.get("signature")
        if isinstance(text, str) and signature is None:  # a server that signs nothing
            return {"type": "thinking", "thinking": text}
        if isinstance(text, str) and isinstance(signature, str):
            return {"type": "thinking", "thinking": text, "signature": signature}
        raise Unsupported(f"`{where}` needs a string `thinking` and `signature`")
    if kind == "redacted_thinking":
        if isinstance(block.get("data"), str):
            return {"type": "redacted_thinking", "data": block["data"]}
        raise Unsupported(f"`{where}` needs a string `data`")
    raise Unsupported(f"`{where}` must be a `thinking` or `redacted_thinking` block")


def _tool_use(call: Any, where: str) -> dict[str, Any]:
    function = call.get("function") if isinstance(call, Mapping) else None
    if not isinstance(function, Mapping):
        raise Unsupported(f"`{where}` must be a function call")
    ident, name = call.get("id"), function.get("name")
    if not isinstance(ident, str) or not isinstance(name, str):
        raise Unsupported(f"`{where}` needs a string `id` and `function.name`")
    arguments = function.get("arguments")
    if arguments is None or arguments == "":
        parsed: Any = {}
    elif isinstance(arguments, str):
        try:
            parsed = json.loads(arguments)
        except (ValueError, RecursionError):
            parsed = None
    else:
        parsed = None
    if not isinstance(parsed, dict):
        raise Unsupported(f"`{where}.function.arguments` must be a JSON object in a string")
    return {"type": "tool_use", "id": ident, "name": name, "input": parsed}


def _tool_result(message: Mapping[str, Any], where: str) -> dict[str, Any]:
    ident = message.get("tool_call_id")
    if not isinstance(ident, str):
        raise Unsupported(f"`{where}.tool_call_id` must be a string")
    content = message.get("content")
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": ident}
    if isinstance(content, str):
        block["content"] = content
    elif content is not None:
        block["content"] = _texts(content, where)
    return block


def _max_tokens(body: Mapping[str, Any], settings: Mapping[str, str]) -> int:
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if value is None:
            continue
        if type(value) is not int or not 1 <= value <= MAX_TOKENS:
            raise Unsupported(f"`{name}` must be a whole number from 1 to {MAX_TOKENS:,}")
        return value
    return default_max_tokens(body, settings)


def default_max_tokens(body: Mapping[str, Any], settings: Mapping[str, str]) -> int:
    """`max_tokens` when the request names none: the integration's setting, else 4096;
    with `thinking` on, that much more than its `budget_tokens` (Anthropic refuses a
    `max_tokens` not above the budget: a budget of 8,000 with the default 4096 was a 400)."""
    default = DEFAULT_MAX_TOKENS
    given = settings.get("default_max_tokens", "")
    if given.isdigit() and 1 <= int(given[:10]) <= MAX_TOKENS:
        default = int(given)
    thinking = body.get("thinking")
    budget = thinking.get("budget_tokens") if isinstance(thinking, Mapping) else None
    if type(budget) is int and 0 < budget < MAX_TOKENS and budget >= default:
        return min(budget + default, MAX_TOKENS)
    return default


def _sampling(body: Mapping[str, Any], out: dict[str, Any]) -> None:
    for name in _COPIED:
        if body.get(name) is not None:
            out[name] = body[name]
    for name, why in _NOT_SENT:
        value = body.get(name)
        if value not in (None, False, [], {}) and not (name == "modalities" and value == ["text"]):
            raise Unsupported(f"`{name}` cannot be sent to Anthropic: {why}{_DROP_HINT}")
    if body.get("seed") is not None:  # any seed, 0 too: it asks for repeatable sampling
        raise Unsupported(
            f"`seed` cannot be sent to Anthropic: it has no seeded sampling{_DROP_HINT}"
        )
    n = body.get("n")
    if n is not None and n != 1:
        raise Unsupported("`n` other than 1 cannot be sent to Anthropic (one answer per request)")
    form = body.get("response_format")
    kind = form.get("type") if isinstance(form, Mapping) else form
    if form is not None and kind != "text":
        raise Unsupported(
            f"`response_format` `{_name(kind)}` cannot be sent to Anthropic: describe the "
            "format in the prompt, or use a tool"
        )
    stop = body.get("stop")
    if isinstance(stop, str):
        out["stop_sequences"] = [stop]
    elif isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        out["stop_sequences"] = list(stop)
    elif stop is not None:
        raise Unsupported("`stop` must be a string or a list of strings")
    user = body.get("user")
    if not isinstance(user, str):
        user = body.get("safety_identifier")  # OpenAI's newer name for the end user
    if isinstance(user, str):
        out["metadata"] = {"user_id": user}


def _tools(body: Mapping[str, Any], out: dict[str, Any]) -> None:
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise Unsupported("`tools` must be a list")
        out["tools"] = [_tool(tool, f"tools[{i}]") for i, tool in enumerate(tools)]
    choice = _tool_choice(body.get("tool_choice"))
    if body.get("parallel_tool_calls") is False and tools:
        choice = choice or {"type": "auto"}
        if choice["type"] != "none":
            choice["disable_parallel_tool_use"] = True
    if choice is not None:
        out["tool_choice"] = choice


def _tool(tool: Any, where: str) -> dict[str, Any]:
    function = tool.get("function") if isinstance(tool, Mapping) else None
    if not isinstance(tool, Mapping) or tool.get("type", "function") != "function":
        kind = tool.get("type") if isinstance(tool, Mapping) else None
        raise Unsupported(f"`{where}`: tool type `{_name(kind)}` cannot be sent to Anthropic")
    if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
        raise Unsupported(f"`{where}.function.name` must be a string")
    schema = function.get("parameters")
    out: dict[str, Any] = {
        "name": function["name"],
        "input_schema": dict(schema if isinstance(schema, Mapping) else _EMPTY_SCHEMA),
    }
    if isinstance(function.get("description"), str):
        out["description"] = function["description"]
    if isinstance(tool.get("cache_control"), Mapping):
        out["cache_control"] = dict(tool["cache_control"])
    return out


def _tool_choice(choice: Any) -> dict[str, Any] | None:
    if choice is None:
        return None
    if choice in ("auto", "none"):
        return {"type": choice}
    if choice == "required":
        return {"type": "any"}
    function = choice.get("function") if isinstance(choice, Mapping) else None
    if isinstance(function, Mapping) and isinstance(function.get("name"), str):
        return {"type": "tool", "name": function["name"]}
    raise Unsupported("`tool_choice` must be auto, none, required or a function by name")


def _name(value: Any) -> str:
    """A client's value, short, for an error message."""
    if value is None:
        return "null"
    text = value if isinstance(value, str) else type(value).__name__
    return clip(text, 40)
