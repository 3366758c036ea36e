"""Upstream answers in the shapes the real APIs send (ids and keys are fake), for the
adapter tests. Written from the APIs' documented and observed wire formats."""

from __future__ import annotations

FAKE_KEY = "sk-test-FAKE-0000-upstream-key"
ANTHROPIC_KEY = "sk-ant-test-FAKE-0000"

OPENAI_CHAT = (
    b'{"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion",'
    b'"created":1741569952,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"message":'
    b'{"role":"assistant","content":"Hello! How can I assist you today?","refusal":null,'
    b'"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":2006,'
    b'"completion_tokens":300,"total_tokens":2306,"prompt_tokens_details":{"cached_tokens":1920,'
    b'"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,'
    b'"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"service_tier":"default",'
    b'"system_fingerprint":"fp_fc9f1d7035"}'
)

OPENAI_EMBEDDINGS = (
    b'{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.0023064255,'
    b'-0.009327292,-0.0028842222]}],"model":"text-embedding-3-small","usage":{"prompt_tokens":8,'
    b'"total_tokens":8}}'
)

OPENAI_RESPONSE = (
    b'{"id":"resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b","object":"response",'
    b'"created_at":1741476542,"status":"completed","error":null,"incomplete_details":null,'
    b'"model":"gpt-4.1-2025-04-14","output":[{"type":"message","id":"msg_67ccd2bf17f0819081ff3bb2cf6508e6",'
    b'"status":"completed","role":"assistant","content":[{"type":"output_text","text":"In a peaceful grove...",'
    b'"annotations":[]}]}],"usage":{"input_tokens":36,"input_tokens_details":{"cached_tokens":4},'
    b'"output_tokens":87,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":123}}'
)

_HEAD = (
    b'"id":"chatcmpl-AqQ8nLQ2M7wF","object":"chat.completion.chunk","created":1737046765,'
    b'"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_72ed7ab54c"'
)
OPENAI_STREAM_EVENTS = [
    b"data: {"
    + _HEAD
    + b',"choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}\n\n',
    b"data: {"
    + _HEAD
    + b',"choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}],"usage":null}\n\n',
    b"data: {"
    + _HEAD
    + b',"choices":[{"index":0,"delta":{"content":" there \xc3\xa9\\n"},"logprobs":null,"finish_reason":null}],"usage":null}\n\n',
    b"data: {"
    + _HEAD
    + b',"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}\n\n',
]
OPENAI_USAGE_CHUNK = (
    b"data: {" + _HEAD + b',"choices":[],"usage":{"prompt_tokens":19,"completion_tokens":3,'
    b'"total_tokens":22,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},'
    b'"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,'
    b'"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}\n\n'
)
OPENAI_DONE = b"data: [DONE]\n\n"
OPENAI_STREAM = b"".join(OPENAI_STREAM_EVENTS) + OPENAI_USAGE_CHUNK + OPENAI_DONE

# Mistral: no stream_options; usage rides on the last chunk, beside its choices.
MISTRAL_STREAM = (
    b'data: {"id":"cmpl-e5cc70bb28c444948073e77776eb30ef","object":"chat.completion.chunk","created":1702256327,"model":"mistral-small-latest","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]}\n\n'
    b'data: {"id":"cmpl-e5cc70bb28c444948073e77776eb30ef","object":"chat.completion.chunk","created":1702256327,"model":"mistral-small-latest","choices":[{"index":0,"delta":{"content":""},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"total_tokens":12,"completion_tokens":2}}\n\n'
    b"data: [DONE]\n\n"
)

_RESP = (
    b'"id":"resp_67c9fdcecf488190bdd9a0409de3a1ec","object":"response","created_at":1741290958,'
    b'"model":"gpt-4.1-2025-04-14","instructions":"You are a helpful assistant."'
)
RESPONSES_STREAM = (
    b'event: response.created\ndata: {"type":"response.created","sequence_number":0,"response":{'
    + _RESP
    + b',"status":"in_progress","output":[],"usage":null}}\n\n'
    b'event: response.output_item.added\ndata: {"type":"response.output_item.added","sequence_number":1,"output_index":0,"item":{"id":"msg_67c9fdcf37fc","status":"in_progress","type":"message","role":"assistant","content":[]}}\n\n'
    b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","sequence_number":2,"item_id":"msg_67c9fdcf37fc","output_index":0,"content_index":0,"delta":"Hi"}\n\n'
    b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","sequence_number":3,"item_id":"msg_67c9fdcf37fc","output_index":0,"content_index":0,"delta":" (response.completed is only text here)"}\n\n'
    b'event: response.completed\ndata: {"type":"response.completed","sequence_number":4,"response":{'
    + _RESP
    + b',"status":"completed","output":[{"id":"msg_67c9fdcf37fc","type":"message","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Hi (response.completed is only text here)","annotations":[]}]}],"usage":{"input_tokens":37,"input_tokens_details":{"cached_tokens":5},"output_tokens":11,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":48}}}\n\n'
)

OPENAI_RATE_LIMITED = (
    b'{"error":{"message":"Rate limit reached for gpt-4o in organization org-FAKE on tokens per '
    b'min (TPM): Limit 30000, Used 29000, Requested 1500. Please try again in 1.2s.","type":"tokens",'
    b'"param":null,"code":"rate_limit_exceeded"}}'
)
OPENAI_BAD_KEY = (
    b'{"error":{"message":"Incorrect API key provided: ' + FAKE_KEY.encode() + b". You can find "
    b'your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error",'
    b'"param":null,"code":"invalid_api_key"}}'
)
MISTRAL_422 = (
    b'{"object":"error","message":{"detail":[{"type":"extra_forbidden","loc":["body",'
    b'"stream_options","include_usage"],"msg":"Extra inputs are not permitted","input":true}]},'
    b'"type":"invalid_request_error","param":null,"code":null}'
)

ANTHROPIC_MESSAGE = (
    b'{"id":"msg_01Aq9w938a90dw8q","type":"message","role":"assistant",'
    b'"model":"claude-sonnet-4-20250514","content":[{"type":"thinking","thinking":"The user wants weather.",'
    b'"signature":"EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"},'
    b'{"type":"text","text":"I\'ll check the weather."},{"type":"tool_use","id":"toolu_01A09q90qw90lq917835lq9",'
    b'"name":"get_weather","input":{"location":"San Francisco, CA","unit":"celsius"}}],'
    b'"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":472,'
    b'"cache_creation_input_tokens":1024,"cache_read_input_tokens":2048,"output_tokens":89,'
    b'"service_tier":"standard"}}'
)

ANTHROPIC_STREAM = (
    b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_014p7gG3wDgGV9EUtLvnow3U","type":"message","role":"assistant","model":"claude-sonnet-4-20250514","stop_sequence":null,"usage":{"input_tokens":472,"cache_creation_input_tokens":100,"cache_read_input_tokens":2000,"output_tokens":2},"content":[],"stop_reason":null}}\n\n'
    b'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n'
    b'event: ping\ndata: {"type": "ping"}\n\n'
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Okay"}}\n\n'
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":", let\'s check \xc3\xa9."}}\n\n'
    b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
    b'event: content_block_start\ndata: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"get_weather","input":{}}}\n\n'
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}\n\n'
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\\"location\\":"}}\n\n'
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":" \\"San Francisco, CA\\"}"}}\n\n'
    b'event: content_block_stop\ndata: {"type":"content_block_stop","index":1}\n\n'
    b'event: content_block_start\ndata: {"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_02second","name":"get_time","input":{}}}\n\n'
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\\"tz\\": \\"PST\\"}"}}\n\n'
    b'event: content_block_stop\ndata: {"type":"content_block_stop","index":2}\n\n'
    b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89}}\n\n'
    b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
)

ANTHROPIC_OVERLOADED = (
    b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'
)
ANTHROPIC_RATE_LIMITED = (
    b'{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has '
    b'exceeded your per-minute rate limit"}}'
)
ANTHROPIC_STREAM_ERROR = b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
