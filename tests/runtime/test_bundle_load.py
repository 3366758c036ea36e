"""Loading: format and digest verified, newer or damaged bundles refused, reload is atomic,
and the runtime never imports the compiler."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from runtime import BundleContentError, BundleFormatError, BundleIntegrityError, Router
from runtime.canonical import seal
from tests.conftest import ROOT


def test_load_verifies_digest(acme_bundle: bytes) -> None:
    router = Router.load(acme_bundle)
    assert router.bundle.digest == json.loads(acme_bundle)["digest"]


@pytest.mark.parametrize(
    ("mutate", "error", "words"),
    [
        (
            lambda b: b.replace(b'"20000"', b'"90000"', 1),
            BundleIntegrityError,
            "digest does not match",
        ),
        (lambda b: b[: len(b) // 2], BundleIntegrityError, "truncated"),
        (lambda b: b"not json at all", BundleIntegrityError, "invalid JSON"),
        (lambda b: b"[1, 2]", BundleIntegrityError, "not a JSON object"),
    ],
)
def test_damaged_bundles_are_refused(
    acme_bundle: bytes, mutate: object, error: type, words: str
) -> None:
    with pytest.raises(error, match=words):
        Router.load(mutate(acme_bundle))  # type: ignore[operator]


def resealed(acme_bundle: bytes, **changes: object) -> bytes:
    body = {k: v for k, v in json.loads(acme_bundle).items() if k != "digest"}
    body.update(changes)
    return seal(body)


def test_newer_format_is_refused_clearly(acme_bundle: bytes) -> None:
    with pytest.raises(BundleFormatError, match="newer than this runtime") as info:
        Router.load(resealed(acme_bundle, format="catalog-bundle/3"))
    assert info.value.path == "format"
    with pytest.raises(BundleFormatError, match="unknown bundle format"):
        Router.load(resealed(acme_bundle, format="something-else"))


def test_missing_digest_is_refused(acme_bundle: bytes) -> None:
    data = json.loads(acme_bundle)
    del data["digest"]
    with pytest.raises(BundleIntegrityError, match="no `digest`"):
        Router.load(json.dumps(data).encode())


def test_a_well_sealed_but_malformed_body_is_refused(acme_bundle: bytes) -> None:
    with pytest.raises(BundleContentError, match="missing member `access`") as info:
        Router.load(resealed(acme_bundle, providers={"x": {"integration": "nope"}}))
    assert info.value.path == "providers.x"


def test_reload_swaps_and_a_bad_bundle_leaves_the_old_serving(
    acme_bundle: bytes, tmp_path: Path
) -> None:
    router = Router.load(acme_bundle)
    old = router.bundle.digest
    with pytest.raises(BundleIntegrityError):
        router.reload(acme_bundle[:100])
    assert router.bundle.digest == old
    assert router.resolve("support", "@openai-prod/gpt-4o").attempts[0].model == "gpt-4o"
    changed = resealed(
        acme_bundle, organization={**json.loads(acme_bundle)["organization"], "name": "Acme 2"}
    )
    path = tmp_path / "new.json"
    path.write_bytes(changed)
    assert router.reload(path) != old
    assert router.bundle.organization["name"] == "Acme 2"


def test_runtime_never_imports_the_compiler() -> None:
    code = "import sys, runtime; import runtime.router; print(sorted(m for m in sys.modules if m.startswith('catalog_compiler')))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "[]"
    for path in (ROOT / "runtime").rglob("*.py"):
        assert "catalog_compiler" not in path.read_text(), path


def test_exported_members_are_sorted_and_real() -> None:
    import runtime

    assert runtime.__all__ == sorted(runtime.__all__)
    assert sorted(runtime._WHERE) == runtime.__all__  # the lazy table names exactly these
    for name in runtime.__all__:
        assert getattr(runtime, name) is not None
