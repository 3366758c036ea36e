"""`service: mock`: the in-process integration the gateway answers itself (demos, tests,
benchmarks). The compiler accepts it, checks its settings, prices its registry models, and
the router loads and resolves the bundle."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from catalog_compiler.compiler import Compiled, compile_catalog
from catalog_compiler.registry import builtin
from catalog_compiler.services import MOCK_BASE_URL, SERVICES
from runtime import Bundle, Router
from runtime.hosts import parse_origin

MakeCatalog = Callable[..., Path]


def mock_catalog(make_catalog: MakeCatalog, settings: str = "") -> Path:
    return make_catalog(
        {
            "mock.yaml": f"""\
            kind: Integration
            slug: mock-local
            service: mock
            {settings}
            ---
            kind: Provider
            slug: mock-fast
            integration: mock-local
            ---
            kind: Workspace
            slug: demo
            budgets:
              - {{limit: 5, unit: usd, period: monthly}}
            """
        }
    )


def compiled(make_catalog: MakeCatalog, settings: str = "") -> Compiled:
    return compile_catalog(mock_catalog(make_catalog, settings))


def test_the_service_needs_no_credentials_and_never_resolves_on_the_network() -> None:
    mock = SERVICES["mock"]
    assert (mock.api, mock.auth, mock.credentials, mock.optional_credentials) == (
        "openai", "none", (), ()
    )  # fmt: skip
    origin = parse_origin(MOCK_BASE_URL)
    # RFC 6761: `.invalid` never resolves, so a request that leaks to the network fails
    assert origin.host.endswith(".invalid")
    assert (origin.scheme, origin.port) == ("http", 80)


def test_registry_prices_its_three_models() -> None:
    models = builtin().models("mock")
    assert sorted(models) == ["echo", "echo-large", "embed"]
    echo, large, embed = models["echo"], models["echo-large"], models["embed"]
    assert echo.prices == {"input": Decimal(1), "output": Decimal(2)}
    assert (echo.context_window, echo.max_output_tokens, echo.mode) == (128000, 4096, "chat")
    assert large.prices == {"input": Decimal(10), "output": Decimal(30)}
    assert (large.context_window, large.max_output_tokens) == (200000, 8192)
    assert embed.prices == {"input": Decimal("0.1")} and embed.mode == "embedding"


def test_a_mock_integration_compiles_and_loads_in_the_router(make_catalog: MakeCatalog) -> None:
    result = compiled(make_catalog, 'settings: {latency_ms: "20", status: "503"}')
    assert result.diagnostics == []
    assert result.data is not None
    bundle = Bundle.load(result.data)
    integ = bundle.integrations["mock-local"]
    assert (integ.service, integ.api, integ.auth) == ("mock", "openai", "none")
    assert dict(integ.credentials) == {}
    assert dict(integ.settings) == {"latency_ms": "20", "status": "503"}
    (attempt,) = Router(bundle).resolve("demo", "@mock-fast/echo").attempts
    assert attempt.url.startswith(MOCK_BASE_URL)
    assert dict(attempt.credentials) == {}
    # a usd budget governs it: every model must be priced (E0501 otherwise)
    assert attempt.prices.input == Decimal(1)


def test_a_config_may_pin_the_mock_to_its_own_origin(make_catalog: MakeCatalog) -> None:
    result = compiled(make_catalog)
    assert result.data is not None
    router = Router(Bundle.load(result.data))
    inline = {"provider": "@mock-fast", "custom_host": MOCK_BASE_URL}
    (attempt,) = router.resolve("demo", "echo", config=inline).attempts
    assert attempt.url.startswith(MOCK_BASE_URL)


def positions(result: Compiled) -> list[tuple[str, str]]:
    return [(f"{d.span.line}:{d.span.column}", d.code) for d in result.diagnostics]


@pytest.mark.parametrize(
    ("value", "code", "message"),
    [
        ('"fast"', "E0205", "`settings.latency_ms` must be a whole number (milliseconds), "
                            "found `fast`"),
        ('"1.5"', "E0205", "`settings.latency_ms` must be a whole number (milliseconds), "
                           "found `1.5`"),
        ('" 5"', "E0205", "`settings.latency_ms` must be a whole number (milliseconds), "
                          "found ` 5`"),
        ('"٣"', "E0205", "`settings.latency_ms` must be a whole number (milliseconds), "
                         "found `٣`"),
        ('"-1"', "E0206", "`settings.latency_ms` must be 0 to 86,400,000 (milliseconds), "
                          "found -1"),
        ('"86400001"', "E0206", "`settings.latency_ms` must be 0 to 86,400,000 "
                                "(milliseconds), found 86400001"),
        ('"' + "9" * 5000 + '"', "E0206", "`settings.latency_ms` must be 0 to 86,400,000 "
                                          "(milliseconds), found 99999999999999999999…"),
        ("250", "E0204", "`settings.latency_ms`: expected a string, found an integer"),
    ],
    ids=["word", "decimal", "space", "arabic-digit", "negative", "above", "5000-digits",
         "unquoted"],
)  # fmt: skip
def test_a_setting_that_is_no_whole_number_in_range_is_located(
    make_catalog: MakeCatalog, value: str, code: str, message: str
) -> None:
    result = compiled(make_catalog, f"settings: {{latency_ms: {value}}}")
    (diagnostic,) = result.diagnostics
    assert (diagnostic.code, diagnostic.message) == (code, message)
    assert positions(result) == [("4:24", code)]  # at the value
    assert result.data is None


def test_each_control_has_its_own_range(make_catalog: MakeCatalog) -> None:
    settings = (
        'settings: {status: "200", retry_after: "86401", cut_after: "1000001", chunk_ms: "0"}'
    )
    result = compiled(make_catalog, settings)
    assert [(d.code, d.message) for d in result.diagnostics] == [
        ("E0206", "`settings.status` must be 400 to 599 (an HTTP error status), found 200"),
        ("E0206", "`settings.retry_after` must be 0 to 86,400 (seconds), found 86401"),
        ("E0206", "`settings.cut_after` must be 0 to 1,000,000 (stream chunks), found 1000001"),
    ]


def test_every_control_at_its_bounds_compiles(make_catalog: MakeCatalog) -> None:
    low = 'settings: {latency_ms: "0", chunk_ms: "0", status: "400", retry_after: "0", ' \
          'cut_after: "0"}'  # fmt: skip
    high = 'settings: {latency_ms: "86400000", chunk_ms: "86400000", status: "599", ' \
           'retry_after: "86400", cut_after: "1000000"}'  # fmt: skip
    for settings in (low, high):
        assert compiled(make_catalog, settings).diagnostics == []


def test_an_unknown_control_or_a_credential_is_refused(make_catalog: MakeCatalog) -> None:
    result = compiled(make_catalog, 'settings: {latency: "5"}\n            credentials: '
                                    "{api_key: {env: MOCK_KEY}}")  # fmt: skip
    assert [(d.code, d.message) for d in result.diagnostics] == [
        ("E0307", "`latency` is not a setting of service `mock`"),
        ("E0307", "`api_key` is not a credential of service `mock`"),
    ]
    assert [d.help for d in result.diagnostics] == [
        "mock takes: latency_ms, chunk_ms, status, retry_after, cut_after",
        "mock takes: no credentials",
    ]
