"""Every expected failure of the runtime is one of these; anything else escaping is a bug.

CatalogRuntimeError
├── BundleError                 the bundle cannot be used (router keeps the last good one);
│   │                           `.path` is the JSON path of the problem ("" for the file)
│   ├── BundleReadError         missing, unreadable, not a regular file, or too large
│   ├── BundleFormatError       unknown or newer format
│   ├── BundleIntegrityError    not strict JSON, truncated, or the digest does not match
│   └── BundleContentError      sealed, but breaks the format's rules (a type, a range, a
│                               reference): it could not serve every request
├── RequestError                a request is refused; `.status` is the HTTP-style status
│   ├── UnknownWorkspace        404
│   ├── UnknownProvider         404
│   ├── UnknownModel            404, with suggestions
│   ├── UnknownConfig           404
│   ├── InvalidConfig           400, an inline config breaks the routing rules
│   ├── InvalidRequest          400 a malformed estimate, usage or request id; 409 an id reused
│   ├── AccessDenied            403, names the level and the rule
│   ├── ModeMismatch            400, a model on an endpoint of another mode
│   ├── BudgetExceeded          412, names the counter, the limit and what remains
│   ├── RateLimited             429, with `retry_after` seconds
│   └── ConcurrencyExceeded     429, with `retry_after` seconds
└── StoreUnavailable            503, the limits store cannot be reached (fail-closed)
"""

from __future__ import annotations

from decimal import Decimal


class CatalogRuntimeError(Exception):
    """Base of every error the runtime raises on purpose."""


class BundleError(CatalogRuntimeError):
    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(f"{message} (at `{path}`)" if path else message)
        self.message = message
        self.path = path  # e.g. "providers.openai-prod.chain[2]"; "" for the whole file


class BundleReadError(BundleError):
    pass


class BundleFormatError(BundleError):
    pass


class BundleIntegrityError(BundleError):
    pass


class BundleContentError(BundleError):
    pass


MAX_QUOTED = 128  # characters of a name a request gave, quoted back in a refusal


def clip(text: str, limit: int = MAX_QUOTED) -> str:
    """A client's text as a refusal quotes it: whole when short, else its start and an
    ellipsis, `limit` characters in all (a 15,000-character query value came back whole)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


class RequestError(CatalogRuntimeError):
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnknownWorkspace(RequestError):
    status = 404

    def __init__(self, workspace: str, suggestion: str | None = None) -> None:
        hint = f"; did you mean `{suggestion}`?" if suggestion else ""
        super().__init__(f"unknown workspace `{clip(workspace)}`{hint}")
        self.workspace = workspace
        self.suggestion = suggestion


class UnknownProvider(RequestError):
    status = 404

    def __init__(self, provider: str, suggestion: str | None = None) -> None:
        hint = f"; did you mean `@{suggestion}`?" if suggestion else ""
        super().__init__(f"unknown provider `@{clip(provider)}`{hint}")
        self.provider = provider
        self.suggestion = suggestion


class UnknownModel(RequestError):
    status = 404

    def __init__(self, provider: str, model: str, suggestions: tuple[str, ...] = ()) -> None:
        hint = f"; did you mean {', '.join(f'`{s}`' for s in suggestions)}?" if suggestions else ""
        super().__init__(f"`@{provider}` has no model `{clip(model)}`{hint}")
        self.provider = provider
        self.model = model
        self.suggestions = suggestions


class UnknownConfig(RequestError):
    status = 404

    def __init__(self, config: str, suggestion: str | None = None) -> None:
        hint = f"; did you mean `{suggestion}`?" if suggestion else ""
        super().__init__(f"unknown config `{clip(config)}`{hint}")
        self.config = config
        self.suggestion = suggestion


class InvalidConfig(RequestError):
    status = 400
    prefix = "invalid routing config: "

    def __init__(self, problems: list[str]) -> None:
        super().__init__(self.prefix + "; ".join(problems))
        self.problems = problems


class NoBranch(InvalidConfig):
    """A conditional strategy without `default` that no condition of matches: a 400 where
    the request must take it, not when it is a later target of a fallback (plan.expand)."""

    def __init__(self) -> None:
        super().__init__(["no condition of the conditional strategy matches this request, "
                          "and it has no `default`"])  # fmt: skip


class InvalidRequestInput(InvalidConfig):
    """The request's own values (its names, path, body or metadata), where no config is at
    fault: said so, not "invalid routing config"."""

    prefix = "invalid request: "


class AccessDenied(RequestError):
    status = 403

    def __init__(self, workspace: str, target: str, level: str, rule: str, origin: str | None):
        where = f" ({origin})" if origin else ""
        super().__init__(f"workspace `{workspace}` may not use `{target}`: {level} {rule}{where}")
        self.workspace = workspace
        self.target = target
        self.level = level
        self.rule = rule
        self.origin = origin


class BudgetExceeded(RequestError):
    status = 412

    def __init__(
        self, counter: str, unit: str, period: str, limit: Decimal | int, remaining: Decimal | int
    ) -> None:
        # with something left, the request's reservation (its input + most output) is larger
        state = "exhausted" if not remaining else "cannot cover this request's reservation"
        super().__init__(
            f"budget of {counter_label(counter)} {state}: {amount_words(limit, unit)} "
            f"{period_words(period)}, {amount_words(remaining, unit)} left"
        )
        self.counter = counter
        self.unit = unit
        self.period = period
        self.limit = limit
        self.remaining = remaining


class RateLimited(RequestError):
    """`retry_after` is None when waiting cannot help: a limit of 0, or a request larger
    than the bucket ever holds."""

    status = 429

    def __init__(
        self, counter: str, unit: str, per: str, limit: int, retry_after: float | None
    ) -> None:
        when = "waiting cannot help" if retry_after is None else f"retry after {retry_after:.3f} s"
        super().__init__(
            f"rate limited by {counter_label(counter)}: {amount_words(limit, unit)} a {per}; {when}"
        )
        self.counter = counter
        self.unit = unit
        self.per = per
        self.limit = limit
        self.retry_after = retry_after


class ConcurrencyExceeded(RequestError):
    status = 429

    def __init__(self, counter: str, limit: int, retry_after: float = 1.0):
        super().__init__(f"too many requests in flight for {counter_label(counter)}: limit {limit}")
        self.counter = counter
        self.limit = limit
        self.retry_after = retry_after


class StoreUnavailable(CatalogRuntimeError):
    status = 503


class ModeMismatch(RequestError):
    """A model asked on an endpoint that does not serve its mode (runtime/routing/modes.py)."""

    status = 400

    def __init__(self, target: str, mode: str, endpoint: str, serving: tuple[str, ...],
                 service: str | None = None) -> None:  # fmt: skip
        where = f"use {' or '.join(serving)}" if serving else "no endpoint here serves it"
        super().__init__(f"`{target}` is a{'n' if mode[0] in 'aeiou' else ''} {mode} model: "
                         f"{endpoint} does not serve it; {where}")  # fmt: skip
        self.target = target
        self.mode = mode
        self.endpoint = endpoint
        self.serving = serving  # the endpoints that serve its mode
        self.service = service  # the target's service: the gateway narrows `serving` by it


class InvalidRequest(RequestError):
    """A field of the request itself is malformed (an estimate, a usage, a request id): 400.
    A request id reused while it is live or remembered as settled: 409."""

    status = 400

    def __init__(self, field: str, problem: str, status: int = 400) -> None:
        super().__init__(f"`{field}` {problem}")
        self.field = field
        self.problem = problem
        self.status = status


# -- the words of refusal messages (also the compiler's and the gallery's) ---------------

_LEVEL_LABEL = {"integration": "integration `{}`", "provider": "provider `@{}`",
                "workspace": "workspace `{}`"}  # fmt: skip
_PERIOD_WORDS = {"daily": "a day", "weekly": "a week", "monthly": "a month", "none": "in total"}


def counter_label(cid: str) -> str:
    """ "workspace/support" -> "workspace `support`", for people reading messages."""
    level, _, slug = cid.partition("/")
    return _LEVEL_LABEL[level].format(slug) if slug else "the organization"


def amount_words(amount: Decimal | int, unit: str) -> str:
    if unit == "usd":  # plain and exact: `0E-16` (nothing left, in 1e-16 units) reads `0`
        text = format(amount.normalize(), "f") if isinstance(amount, Decimal) else str(amount)
        return f"{text} USD"
    word = unit if amount != 1 else unit.removesuffix("s")
    return f"{amount} {word}"


def period_words(period: str) -> str:
    return _PERIOD_WORDS.get(period) or f"every {period[:-1]} days"
