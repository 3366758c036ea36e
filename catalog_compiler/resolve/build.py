"""Resolve inheritance and build the bundle body (SPEC §3.3, §4).

Positions never enter the body: they go to `provenance.origins`, keyed by element, so
reordering documents or keys changes only provenance. Lists with set meaning (patterns,
workspaces, limits) are sorted; lists with order meaning (targets, conditions) are kept.
`BundleBuilder` writes the organization, integrations, providers (with their models) and
configs; the counters, workspaces and access lists are built by counters.py, workspaces.py
and access.py.
"""

from __future__ import annotations

from typing import Any

from catalog_compiler import __version__
from catalog_compiler.model.common import ModelAccess, Pricing, SecretRef
from catalog_compiler.model.documents import CustomModel, Integration, Provider
from catalog_compiler.model.refs import ref_json
from catalog_compiler.resolve.access import access_json, allowed_hosts, selection
from catalog_compiler.resolve.context import Context, Located, Path
from catalog_compiler.resolve.counters import ORG_COUNTER, counter_id, counters
from catalog_compiler.resolve.drafts import (
    ModelDraft,
    endpoint_of,
    headers_json,
    integration_url,
    most_specific,
)
from catalog_compiler.resolve.price_variants import NO_VARIANTS, free_fields, resolved
from catalog_compiler.resolve.routing import ConfigCompiler, Destination, Leaf
from catalog_compiler.resolve.values import plain
from catalog_compiler.resolve.workspaces import check_key_hashes, workspace_json
from catalog_compiler.services import SERVICES
from runtime.bundle.access import Rules
from runtime.bundle.canonical import FORMAT


class BundleBuilder:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.leaves: list[Leaf] = []
        self._exposed: dict[str, set[str]] = {}
        self._rules: dict[int, Rules] = {}  # by id of a `models:` block, alive as long as ctx
        self.destinations: dict[str, Destination] = {}  # provider slug -> where creds may go
        self._unpriced: set[tuple[int, Path]] = set()  # E0404 places reported

    # -- documents (counters: counters.py, workspaces: workspaces.py) -------------------
    def organization(self) -> dict[str, Any]:
        org = self.ctx.org
        self.ctx.remember("organization", self.ctx.organization, ("kind",))
        out = {
            "name": org.name,
            "currency": org.currency,
            "epoch": org.epoch,
            "access": access_json(
                self.ctx, org.models, self.ctx.organization, ("models",), "organization/access"
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
            "access": access_json(
                self.ctx, integ.models, located, ("models",), f"integrations/{slug}/access"
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
        access = access_json(
            self.ctx, prov.models, located, ("models",), f"providers/{slug}/access"
        )
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
        hosts = allowed_hosts(self.ctx, slug)
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

    def provider_models(self, slug: str) -> set[str]:
        return self.exposed(self.ctx.provider(slug).integration) | self.provider_customs(slug)

    def config(self, slug: str) -> dict[str, Any]:
        located = self.ctx.configs[slug]
        cfg = located.model
        self.ctx.remember(f"configs/{slug}", located, ("slug",))
        compiler = ConfigCompiler(self.ctx, slug, located)
        tree = compiler.compile(self.destinations)
        self.leaves.extend(compiler.leaves)
        return {"workspaces": selection(cfg.workspaces), "tree": tree}

    def build(self, files: list[dict[str, str]]) -> dict[str, Any]:
        """The bundle body; `files` are the provenance entries {path, sha256}."""
        ctx = self.ctx
        body: dict[str, Any] = {
            "format": FORMAT,
            "organization": self.organization(),
            "counters": counters(ctx),
            "integrations": {s: self.integration(s) for s in sorted(ctx.integrations)},
            "providers": {s: self.provider(s) for s in sorted(ctx.providers)},
            "workspaces": {
                s: workspace_json(ctx, s, self.provider_models) for s in sorted(ctx.workspaces)
            },
            "configs": {s: self.config(s) for s in sorted(ctx.configs)},
        }
        check_key_hashes(ctx)
        body["provenance"] = {
            "compiler": f"catalogc {__version__}",
            "registry_as_of": ctx.registry.as_of,
            "files": sorted(files, key=lambda f: f["path"]),
            "origins": dict(sorted(ctx.provenance_origins().items())),
        }
        return body
