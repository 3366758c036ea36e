"""`service: mock`: the in-process integration the gateway answers itself (demos, tests,
benchmarks). The compiler accepts it, checks its settings, prices its registry models, and
the router loads and resolves the bundle."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from catalog_compiler.compiler import Compiled, compile_catalog
from catalog_compiler.registry import builtin
from catalog_compiler.services import MOCK_BASE_URL, SERVICES
from runtime import AccessDenied, Bundle, Estimate, MemoryStore, RateLimited, Router, Usage
from runtime.bundle.hosts import parse_origin

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
        ('"-1"', "E0206", "`settings.latency_ms` must be 0 to 60,000 (milliseconds), "
                          "found -1"),
        ('"60001"', "E0206", "`settings.latency_ms` must be 0 to 60,000 "
                             "(milliseconds), found 60001"),
        ('"' + "9" * 5000 + '"', "E0206", "`settings.latency_ms` must be 0 to 60,000 "
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
    high = 'settings: {latency_ms: "60000", chunk_ms: "60000", status: "599", ' \
           'retry_after: "86400", cut_after: "1000000"}'  # fmt: skip
    for settings in (low, high):
        assert compiled(make_catalog, settings).diagnostics == []


def test_what_compiles_the_mock_accepts_at_run_time() -> None:
    """The compiler's ranges lie within the mock's own (runtime/upstream/mock.py): a bundle
    that compiles never has the mock answer 400 to its own settings."""
    from runtime.upstream.mock import CONTROLS

    rules = SERVICES["mock"].whole_settings
    assert [r.name for r in rules] == list(CONTROLS)
    assert set(SERVICES["mock"].optional_settings) == set(CONTROLS)
    for rule in rules:
        _, low, high = CONTROLS[rule.name]
        assert low <= rule.lo <= rule.hi <= high, rule


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


# -- examples/gateway: the README's offline gateway quick start ------------------------------

GATEWAY = Path(__file__).resolve().parents[2] / "examples" / "gateway"
DEMO_KEYS = {"demo": "demo-key-not-secret", "analytics": "analytics-key-not-secret"}
NOW_NS = 1_800_000_000 * 10**9  # a fixed clock: admission never depends on the test's speed


@pytest.fixture(scope="module")
def gateway() -> Bundle:
    result = compile_catalog(GATEWAY)
    assert result.diagnostics == []  # not even a warning: the quick start compiles cleanly
    assert result.data is not None
    return Bundle.load(result.data)


def test_the_gateway_example_holds_the_documented_demo_keys(gateway: Bundle) -> None:
    docs = (GATEWAY.parents[1] / "docs" / "gateway.md").read_text(encoding="utf-8")
    comment = (GATEWAY / "workspaces.yaml").read_text(encoding="utf-8")
    for workspace, key in DEMO_KEYS.items():
        assert key in docs and key in comment
        (entry,) = gateway.workspaces[workspace].api_keys
        assert entry["sha256"] == hashlib.sha256(key.encode()).hexdigest()
        assert entry["name"] == workspace


def test_the_demo_falls_back_from_the_outage_to_the_healthy_mock(gateway: Bundle) -> None:
    assert gateway.workspaces["demo"].default_config == "demo-fallback"
    plan = Router(gateway).resolve("demo", config="demo-fallback")
    down, fast = plan.attempts
    assert (plan.mode, down.target, fast.target) == ("fallback", "@mock-down/echo",
                                                      "@mock-fast/echo")  # fmt: skip
    assert down.fallback_on == frozenset({503})
    assert dict(gateway.providers["mock-down"].integration.settings) == {"status": "503"}
    assert dict(gateway.providers["mock-fast"].integration.settings) == {}


def test_the_tier_config_routes_on_metadata(gateway: Bundle) -> None:
    router = Router(gateway)
    (pro,) = router.resolve("demo", config="by-tier", metadata={"tier": "pro"}).attempts
    (free,) = router.resolve("demo", config="by-tier", metadata={"tier": "free"}).attempts
    assert (pro.target, free.target) == ("@mock-fast/echo-large", "@mock-fast/echo")


def test_analytics_has_the_narrower_allow_list(gateway: Bundle) -> None:
    router = Router(gateway)
    assert router.resolve("analytics", "@mock-fast/embed").attempts[0].model == "embed"
    with pytest.raises(AccessDenied, match="echo-large"):
        router.resolve("analytics", "@mock-fast/echo-large")
    with pytest.raises(AccessDenied, match="by-tier"):
        router.resolve("analytics", config="by-tier")


def test_the_eleventh_demo_request_within_a_minute_is_rate_limited(gateway: Bundle) -> None:
    router = Router(gateway, MemoryStore(clock=lambda: NOW_NS))
    (attempt,) = router.resolve("demo", "@mock-fast/echo").attempts
    for _ in range(10):
        router.admit(attempt, Estimate(3, 16)).settle(Usage(3, 5))
    with pytest.raises(RateLimited) as refused:
        router.admit(attempt, Estimate(3, 16))
    assert refused.value.status == 429
    assert refused.value.retry_after == pytest.approx(6)  # 10 a minute: one every 6 s
