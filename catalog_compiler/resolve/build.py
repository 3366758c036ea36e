"""Resolve inheritance and build the bundle body (SPEC §3.3, §4).

Positions never enter the body: they go to `provenance.origins`, keyed by element, so
reordering documents or keys changes only provenance. Lists with set meaning (patterns,
workspaces, limits) are sorted; lists with order meaning (targets, conditions) are kept.
"""

from __future__ import annotations

from typing import Any

from catalog_compiler import __version__
from catalog_compiler.diagnostics import Note
from catalog_compiler.model.common import (
    Limits,
    ModelAccess,
    Pricing,
    SecretRef,
)
from catalog_compiler.model.documents import CustomModel, Integration, Provider
from catalog_compiler.model.refs import ref_json
from catalog_compiler.resolve.aliases import effective as effective_aliases
from catalog_compiler.resolve.context import Context, Located, Path
from catalog_compiler.resolve.drafts import (
    ModelDraft,
    endpoint_of,
    headers_json,
    integration_url,
    most_specific,
)
from catalog_compiler.resolve.price_variants import NO_VARIANTS, free_fields, resolved
from catalog_compiler.resolve.routing import ConfigCompiler, Destination, Leaf
from catalog_compiler.resolve.values import dec, plain
from catalog_compiler.services import SERVICES
from runtime.access import Rules
from runtime.canonical import FORMAT
from runtime.hosts import HostPattern, parse_host_pattern

ORG_COUNTER = "organization"


def counter_id(level: str, slug: str) -> str:
    return f"{level}/{slug}"


def selection(items: tuple[str, ...] | None) -> list[str] | None:
    if items is None:
        return None
    return ["*"] if "*" in items else sorted(set(items))


class BundleBuilder:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.leaves: list[Leaf] = []
        self._exposed: dict[str, set[str]] = {}
        self._rules: dict[int, Rules] = {}  # by id of a `models:` block, alive as long as ctx
        self.destinations: dict[str, Destination] = {}  # provider slug -> where creds may go
        self._unpriced: set[tuple[int, Path]] = set()  # E0404 places reported

    # -- shared pieces ------------------------------------------------------------------
    def access(self, models: ModelAccess | None, located: Located, path: Path, key: str) -> Any:
        if models is None:
            return {"allow": None, "deny": []}
        for name in ("allow", "deny"):
            for i, text in enumerate(getattr(models, name) or ()):
                self.ctx.remember(f"{key}/{name}/{text}", located, (*path, name, i))
        if models.allow is not None:
            self.ctx.remember(f"{key}/allow", located, (*path, "allow"))
        return {
            "allow": None if models.allow is None else sorted(set(models.allow)),
            "deny": sorted(set(models.deny)),
        }

    def counter(
        self, cid: str, own: Limits, own_at: Located, defaults: Limits | None,
        defaults_at: Located | None, defaults_path: Path = (),
    ) -> dict[str, Any]:  # fmt: skip
        """One pool: its own limits, plus defaults for the (unit, period) it did not declare."""
        budgets: dict[str, Any] = {}
        rates: dict[str, Any] = {}
        layers: list[tuple[Limits, Located, Path]] = [(own, own_at, ())]
        if defaults is not None and defaults_at is not None:
            layers.append((defaults, defaults_at, defaults_path))
        for limits, located, path in layers:
            from_defaults = limits is defaults
            for i, b in enumerate(limits.budgets):
                key = f"{b.unit}/{b.period}"
                if key not in budgets:
                    budgets[key] = {
                        "unit": b.unit, "period": b.period,
                        "limit": dec(b.limit) if b.unit == "usd" else int(b.limit),
                    }  # fmt: skip
                    if b.alert_threshold is not None:
                        budgets[key]["alert_threshold"] = dec(b.alert_threshold)
                    element = f"counters/{cid}/budgets/{key}"
                    self.ctx.remember(element, located, (*path, "budgets", i))
                    if from_defaults:
                        self.ctx.defaulted.add(element)
            for i, r in enumerate(limits.rate_limits):
                key = f"{r.unit}/{r.per}"
                if key not in rates:
                    burst = r.burst if r.burst is not None else r.limit
                    rates[key] = {"unit": r.unit, "per": r.per, "limit": r.limit, "burst": burst}
                    element = f"counters/{cid}/rate_limits/{key}"
                    self.ctx.remember(element, located, (*path, "rate_limits", i))
                    if from_defaults:
                        self.ctx.defaulted.add(element)
        concurrency = own.concurrency
        if concurrency is not None:
            self.ctx.remember(f"counters/{cid}/concurrency", own_at, ("concurrency",))
        elif defaults is not None and defaults.concurrency is not None and defaults_at is not None:
            concurrency = defaults.concurrency
            element = f"counters/{cid}/concurrency"
            self.ctx.remember(element, defaults_at, (*defaults_path, "concurrency"))
            self.ctx.defaulted.add(element)
        out: dict[str, Any] = {
            "budgets": [budgets[k] for k in sorted(budgets)],
            "rate_limits": [rates[k] for k in sorted(rates)],
        }
        if concurrency is not None:
            out["concurrency"] = concurrency
        return out

    # -- documents ----------------------------------------------------------------------
    def organization(self) -> dict[str, Any]:
        org = self.ctx.org
        self.ctx.remember("organization", self.ctx.organization, ("kind",))
        out = {
            "name": org.name,
            "currency": org.currency,
            "epoch": org.epoch,
            "access": self.access(
                org.models, self.ctx.organization, ("models",), "organization/access"
            ),
        }
        if org.alerts is not None:  # likewise
            out["alerts"] = {"webhook": org.alerts.webhook, "secret": org.alerts.secret.ref()}
        if org.admin_keys:  # only when present: bundles without them stay byte-identical
            out["admin_keys"] = sorted(
                ({"name": k.name, "sha256": k.sha256, "disabled": k.disabled}
                 for k in org.admin_keys),
                key=lambda k: (k["name"], k["sha256"]),
            )  # fmt: skip
        return out

    def integration(self, slug: str) -> dict[str, Any]:
        located = self.ctx.integrations[slug]
        integ: Integration = located.model
        service = SERVICES[integ.service]
        self.ctx.remember(f"integrations/{slug}", located, ("slug",))
        if integ.workspaces is not None:
            self.ctx.remember(f"integrations/{slug}/workspaces", located, ("workspaces",))
        return {
            "service": service.id,
            "api": service.api,
            "auth": service.auth,
            "base_url": ref_json(integration_url(integ)),
            "credentials": {k: v.ref() for k, v in sorted(integ.credentials.items())},
            "settings": dict(sorted(integ.settings.items())),
            "workspaces": selection(integ.workspaces) or ["*"],
            "access": self.access(
                integ.models, located, ("models",), f"integrations/{slug}/access"
            ),
            "exposed": sorted(self.exposed(slug)),
        } | headers_json(integ.headers)

    def exposed(self, integration: str) -> set[str]:
        """Registry models of the service (with aliases) and the integration's custom models."""
        found = self._exposed.get(integration)
        if found is None:
            integ = self.ctx.integration(integration)
            found = set(self.ctx.registry.models(integ.service))
            found.update(c.name for c in (integ.models.custom if integ.models else ()))
            found.update(self.ctx.models_on("integration", integration))
            self._exposed[integration] = found
        return found

    def customs(self, provider: str, name: str) -> list[tuple[CustomModel, Located, Path]]:
        """Custom definitions of `name` for this provider, lowest priority first."""
        prov = self.ctx.provider(provider)
        integ_loc = self.ctx.integrations[prov.integration]
        integ: Integration = integ_loc.model
        out: list[tuple[CustomModel, Located, Path]] = [
            (c, integ_loc, ("models", "custom", i))
            for i, c in enumerate(integ.models.custom if integ.models else ())
            if c.name == name
        ]
        for home, slug in (("integration", prov.integration), ("provider", provider)):
            for located in self.ctx.models_on(home, slug).get(name, ()):
                out.append((located.model, located, ()))
        return out

    def model(self, provider: str, name: str) -> ModelDraft:
        prov = self.ctx.provider(provider)
        integ = self.ctx.integration(prov.integration)
        registry = self.ctx.registry
        region = integ.settings.get("region")  # picks regional prices (price_variants.py)
        draft = ModelDraft()
        blocks: list[tuple[Pricing, Located, Path]] = []  # for E0404
        known = registry.lookup(integ.service, name)
        if known is not None:
            draft.known(known)
        for custom, located, path in self.customs(provider, name):
            base = registry.lookup(integ.service, custom.base_model) if custom.base_model else None
            if base is not None:
                draft.known(base)
            draft.mode = custom.mode or (draft.mode if known or base else "chat")
            endpoint_of(custom, draft.endpoint)
            draft.context_window = custom.context_window or draft.context_window
            draft.max_output_tokens = custom.max_output_tokens or draft.max_output_tokens
            if custom.pricing is not None:
                fields, variants = resolved(custom.pricing, region)
                draft.price(fields, "model", located, (*path, "pricing"), variants)
                blocks.append((custom.pricing, located, (*path, "pricing")))
        for level, overrides, located in (
            ("integration", integ.pricing, self.ctx.integrations[prov.integration]),
            ("provider", prov.pricing, self.ctx.providers[provider]),
        ):
            found = most_specific(overrides, name, provider)
            if found is not None:
                i, override = found
                given, variants = (
                    (free_fields(), NO_VARIANTS) if override.free else resolved(override, region)
                )
                draft.price(given, level, located, ("pricing", i), variants)
                blocks.append((override, located, ("pricing", i)))
        self.unpriced_variants(blocks, set(draft.prices))
        return draft

    def unpriced_variants(
        self, blocks: list[tuple[Pricing, Located, Path]], base: set[str]
    ) -> None:
        """E0404, once per place: a tier or variant price the resolved base does not have."""
        for block, located, path in blocks:
            for inner, name in block.unpriced(base):
                where = (*path, *inner, name)
                if (id(located), where) in self._unpriced:
                    continue
                self._unpriced.add((id(located), where))
                self.ctx.sink.emit(
                    "E0404",
                    f"`{name}` is priced here but the model's base price has no `{name}`",
                    self.ctx.span(located, where),
                    help=f"add `{name}` to the base prices, or remove it here",
                )

    def provider(self, slug: str) -> dict[str, Any]:
        located = self.ctx.providers[slug]
        prov: Provider = located.model
        integ = self.ctx.integration(prov.integration)
        self.ctx.remember(f"providers/{slug}", located, ("slug",))
        if prov.workspaces is not None:
            self.ctx.remember(f"providers/{slug}/workspaces", located, ("workspaces",))
        access = self.access(prov.models, located, ("models",), f"providers/{slug}/access")
        models = {}
        for name in sorted(self.exposed(prov.integration) | self.provider_customs(slug)):
            if self.refused_above_workspace(slug, name):
                continue
            draft = self.model(slug, name)
            models[name] = draft.json()
            for field_name, where in draft.elements.items():
                if where is not None:
                    element = f"prices/{slug}/{name}/{field_name}"
                    self.ctx.remember(element, where, draft.paths[field_name])
            definitions = self.customs(slug, name)
            if definitions:  # where a missing price belongs: the model's own definition
                custom, at, path = definitions[-1]
                spot = (*path, "pricing") if custom.pricing is not None else (path or ("name",))
                self.ctx.remember(f"models/{slug}/{name}", at, spot)
        base_url = prov.base_url or integration_url(integ)
        hosts = self.allowed_hosts(slug)
        self.destinations[slug] = Destination(
            base_url if isinstance(base_url, str) else None, tuple(hosts), prov.integration,
            tuple(integ.allowed_hosts or ()), prov.allowed_hosts is not None,
            base_url.ref() if isinstance(base_url, SecretRef) else None,
        )  # fmt: skip
        return headers_json(prov.headers) | {
            "integration": prov.integration,
            "base_url": ref_json(base_url),
            "allowed_hosts": hosts,
            "default_params": plain(prov.default_params or {}),
            "workspaces": selection(prov.workspaces),
            "access": access,
            "custom": sorted(self.provider_customs(slug)),
            "chain": [
                ORG_COUNTER,
                counter_id("integration", prov.integration),
                counter_id("provider", slug),
            ],
            "models": models,
        }

    def allowed_hosts(self, slug: str) -> list[str]:
        """The integration's `allowed_hosts`, narrowed by the provider's (never widened)."""
        located = self.ctx.providers[slug]
        prov: Provider = located.model
        integ_at = self.ctx.integrations[prov.integration]
        outer = [parse_host_pattern(h) for h in integ_at.model.allowed_hosts or ()]
        if prov.allowed_hosts is None:
            if integ_at.model.allowed_hosts is not None:
                element = f"providers/{slug}/allowed_hosts"
                self.ctx.remember(element, integ_at, ("allowed_hosts",))
            return sorted({str(p) for p in outer})
        self.ctx.remember(f"providers/{slug}/allowed_hosts", located, ("allowed_hosts",))
        chosen: set[str] = set()
        for i, text in enumerate(prov.allowed_hosts):
            inner = parse_host_pattern(text)
            if any(o.covers(inner) for o in outer):
                chosen.add(str(inner))
            else:
                self.widens(located, i, inner, prov.integration, outer)
        return sorted(chosen)

    def widens(
        self, located: Located, i: int, entry: HostPattern, integration: str,
        outer: list[HostPattern],
    ) -> None:  # fmt: skip
        allows = ", ".join(f"`{o}`" for o in outer) if outer else "no hosts"
        self.ctx.sink.emit(
            "E0509",
            f"`{entry}` is not allowed by integration `{integration}` (it allows {allows}): "
            "a provider's `allowed_hosts` can only narrow its integration's",
            self.ctx.span(located, ("allowed_hosts", i)),
            help=f"add `{entry}` to `allowed_hosts` of integration `{integration}`, "
            "or remove it here",
        )

    def provider_customs(self, slug: str) -> set[str]:
        return set(self.ctx.models_on("provider", slug))

    def refused_above_workspace(self, provider: str, name: str) -> bool:
        prov = self.ctx.provider(provider)
        levels = (self.ctx.org.models, self.ctx.integration(prov.integration).models, prov.models)
        names = (name, f"@{provider}/{name}")
        return any(self.rules(m).refuse(names) is not None for m in levels if m is not None)

    def rules(self, models: ModelAccess) -> Rules:
        """The runtime's rule evaluator for a `models:` block (only its verdict is used)."""
        found = self._rules.get(id(models))
        if found is None:
            found = Rules.from_json("", "", {"allow": models.allow, "deny": models.deny})
            self._rules[id(models)] = found
        return found

    def workspace(self, slug: str) -> dict[str, Any]:
        located = self.ctx.workspaces[slug]
        ws = located.model
        self.ctx.remember(f"workspaces/{slug}", located, ("slug",))
        if ws.providers is not None:
            self.ctx.remember(f"workspaces/{slug}/providers", located, ("providers",))
        pricing = []
        for i, override in enumerate(ws.pricing):
            self.ctx.remember(
                f"workspaces/{slug}/pricing/{override.model}", located, ("pricing", i)
            )
            entry: dict[str, Any] = {"model": override.model}
            if override.free:
                entry["free"] = True
            else:
                fields, variants = resolved(override, None)  # no regions here (E0406)
                prices = {**{k: dec(v) for k, v in fields.items()}, **variants}
                entry["prices"] = dict(sorted(prices.items()))
            pricing.append(entry)
        out = {
            "providers": selection(ws.providers),
            "access": self.access(ws.models, located, ("models",), f"workspaces/{slug}/access"),
            "pricing": sorted(pricing, key=lambda e: e["model"]),
            "counter": counter_id("workspace", slug),
            "default_config": ws.default_config,
            "api_keys": sorted(
                ({"name": k.name, "sha256": k.sha256, "disabled": k.disabled} for k in ws.api_keys),
                key=lambda k: k["name"],
            ),
        }
        aliases = effective_aliases(self.ctx, slug, self.provider_models)
        if aliases:  # only when present: bundles without them stay byte-identical
            out["aliases"] = aliases
        return out

    def provider_models(self, slug: str) -> set[str]:
        return self.exposed(self.ctx.provider(slug).integration) | self.provider_customs(slug)

    def check_key_hashes(self) -> None:
        """E0514: one key hash listed twice (two workspaces, or a workspace and an admin):
        the gateway could not tell who is calling, and refuses such a bundle at load."""
        seen: dict[str, tuple[str, Located, Path]] = {}
        owners: list[tuple[str, Located, Path, str]] = []
        org = self.ctx.organization
        if org is not None:
            for i, k in enumerate(self.ctx.org.admin_keys):
                owners.append(("the organization's `admin_keys`", org, ("admin_keys", i), k.sha256))
        for slug in sorted(self.ctx.workspaces):
            located = self.ctx.workspaces[slug]
            for i, k in enumerate(located.model.api_keys):
                owners.append((f"workspace `{slug}`", located, ("api_keys", i), k.sha256))
        for who, located, path, digest in owners:
            first = seen.get(digest)
            if first is None:
                seen[digest] = (who, located, path)
                continue
            self.ctx.sink.emit(
                "E0514",
                f"this key's sha256 is already listed by {first[0]}: a key must name one caller",
                self.ctx.span(located, (*path, "sha256")),
                help="give each workspace (and each admin) its own key",
                notes=[Note(self.ctx.span(first[1], (*first[2], "sha256")), "first listed here")],
            )

    def config(self, slug: str) -> dict[str, Any]:
        located = self.ctx.configs[slug]
        cfg = located.model
        self.ctx.remember(f"configs/{slug}", located, ("slug",))
        compiler = ConfigCompiler(self.ctx, slug, located)
        tree = compiler.compile(self.destinations)
        self.leaves.extend(compiler.leaves)
        return {"workspaces": selection(cfg.workspaces), "tree": tree}

    def counters(self) -> dict[str, Any]:
        ctx = self.ctx
        org = ctx.org
        out = {ORG_COUNTER: self.counter(ORG_COUNTER, org, ctx.organization, None, None)}
        for slug, located in ctx.integrations.items():
            cid = counter_id("integration", slug)
            out[cid] = self.counter(cid, located.model, located, None, None)
        for slug, located in ctx.providers.items():
            cid = counter_id("provider", slug)
            integ_loc = ctx.integrations[located.model.integration]
            defaults = integ_loc.model.provider_defaults
            out[cid] = self.counter(cid, located.model, located, defaults, integ_loc,
                                    ("provider_defaults",))  # fmt: skip
        for slug, located in ctx.workspaces.items():
            cid = counter_id("workspace", slug)
            out[cid] = self.counter(cid, located.model, located, org.workspace_defaults,
                                    ctx.organization, ("workspace_defaults",))  # fmt: skip
        return out

    def build(self, files: list[dict[str, str]]) -> dict[str, Any]:
        """The bundle body; `files` are the provenance entries {path, sha256}."""
        ctx = self.ctx
        body: dict[str, Any] = {
            "format": FORMAT,
            "organization": self.organization(),
            "counters": self.counters(),
            "integrations": {s: self.integration(s) for s in sorted(ctx.integrations)},
            "providers": {s: self.provider(s) for s in sorted(ctx.providers)},
            "workspaces": {s: self.workspace(s) for s in sorted(ctx.workspaces)},
            "configs": {s: self.config(s) for s in sorted(ctx.configs)},
        }
        self.check_key_hashes()
        body["provenance"] = {
            "compiler": f"catalogc {__version__}",
            "registry_as_of": ctx.registry.as_of,
            "files": sorted(files, key=lambda f: f["path"]),
            "origins": dict(sorted(ctx.provenance_origins().items())),
        }
        return body
