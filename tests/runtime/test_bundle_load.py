"""Loading: format and digest verified, newer or damaged bundles refused, reload is atomic,
and the runtime never imports the compiler."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from runtime import (
    Bundle,
    BundleContentError,
    BundleError,
    BundleFormatError,
    BundleIntegrityError,
    BundleReadError,
    Router,
)
from runtime.bundle.canonical import seal
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
    code = "import sys, runtime; import runtime.routing.router; print(sorted(m for m in sys.modules if m.startswith('catalog_compiler')))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "[]"
    for path in (ROOT / "runtime").rglob("*.py"):
        assert "catalog_compiler" not in path.read_text(), path


def test_the_bundle_layers_small_modules_do_not_load_the_loader() -> None:
    """The compiler's checks import errors and suggest from the bundle layer; the package
    must not pull in the whole loader with them (~110 ms), yet still answers for the
    loader's names on first use."""
    code = (
        "import sys; import runtime.bundle.errors, runtime.bundle.suggest;"
        " print('runtime.bundle.load' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "False"
    import runtime.bundle
    from runtime.bundle import load

    for name in load.__all__:
        assert getattr(runtime.bundle, name) is getattr(load, name)
    with pytest.raises(AttributeError):
        _ = runtime.bundle.no_such_name


def test_exported_members_are_sorted_and_real() -> None:
    import runtime

    assert runtime.__all__ == sorted(runtime.__all__)
    assert sorted(runtime._WHERE) == runtime.__all__  # the lazy table names exactly these
    for name in runtime.__all__:
        assert getattr(runtime, name) is not None


# -- reading: only a regular file, with a bound --------------------------------------------


SECRET = "sk-proj-FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE0123"


def load_in_a_process(path: Path | str, max_bytes: int | None = None) -> str:
    """Bundle.load in a fresh process with a timeout: a FIFO or /dev/zero must not hang."""
    bound = f", max_bytes={max_bytes}" if max_bytes is not None else ""
    code = (
        "import sys\nfrom runtime import Bundle, BundleError\n"
        f"try:\n    Bundle.load(sys.argv[1]{bound})\nexcept BundleError as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FAKE_TOKEN": SECRET}
    run = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        capture_output=True, text=True, timeout=60, cwd=ROOT, check=False, env=env,
    )  # fmt: skip
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr
    assert SECRET not in run.stdout + run.stderr
    return run.stdout.strip()


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "bundle.json"
    os.mkfifo(fifo)
    assert load_in_a_process(fifo).startswith("BundleReadError")
    assert "not a regular file" in load_in_a_process(fifo)


@pytest.mark.parametrize("path", ["/dev/zero", "/dev/null", "/proc/self/environ"])
def test_special_files_are_refused_without_reading_them_whole(path: str) -> None:
    out = load_in_a_process(path)  # the process environment holds a fake secret: not echoed
    assert out.startswith(("BundleReadError", "BundleIntegrityError")), out


def test_a_directory_and_a_missing_file_are_read_errors(tmp_path: Path) -> None:
    assert load_in_a_process(tmp_path).startswith("BundleReadError")
    assert load_in_a_process(tmp_path / "missing.json").startswith("BundleReadError")


def test_a_file_above_the_bound_is_refused_before_parsing(
    tmp_path: Path, acme_bundle: bytes
) -> None:
    path = tmp_path / "bundle.json"
    path.write_bytes(acme_bundle)
    assert "at most 1,000" in load_in_a_process(path, max_bytes=1000)
    with pytest.raises(BundleReadError, match="at most"):
        Bundle.load(acme_bundle, max_bytes=1000)
    assert Bundle.load(path).digest == json.loads(acme_bundle)["digest"]


# -- parsing: strict JSON, no NaN, bounded numbers and depth -------------------------------


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b'{"format": NaN}', "invalid JSON"),
        (b'{"format": Infinity}', "invalid JSON"),
        (b'{"format": 1e400}', "too large for a double"),
        (b'{"format": ' + b"9" * 5000 + b"}", "invalid JSON"),
        (b"[" * 200_000 + b"]" * 200_000, "nested too deeply"),
        (b'{"format": "\xff"}', "not UTF-8"),
        (b'\xef\xbb\xbf{"format": 1}', "invalid JSON"),
        (b'"just a string"', "not a JSON object"),
    ],
    ids=["NaN", "Infinity", "1e400", "5000 digits", "deep", "not UTF-8", "BOM", "string"],
)
def test_only_strict_json_is_read(raw: bytes, words: str) -> None:
    with pytest.raises(BundleIntegrityError, match=words):
        Bundle.load(raw)


def test_a_lone_surrogate_has_no_canonical_form(acme_bundle: bytes) -> None:
    body = {k: v for k, v in json.loads(acme_bundle).items() if k != "digest"}
    body["organization"]["name"] = "Acme \udc00"
    data = json.dumps({**body, "digest": "sha256:" + "0" * 64}).encode()  # \\udc00 escaped
    with pytest.raises(BundleIntegrityError, match="lone surrogate"):
        Bundle.load(data)


def test_a_legacy_bundle_is_still_read(acme_bundle: bytes) -> None:
    data = resealed(acme_bundle, format="catalog-bundle/1")
    assert Bundle.load(data).digest == json.loads(data)["digest"]


def test_every_bundle_error_names_its_path(acme_bundle: bytes) -> None:
    data = resealed(acme_bundle, counters={"organization": {"budgets": "none"}})
    with pytest.raises(BundleContentError) as info:
        Bundle.load(data)
    assert info.value.path == "counters.organization"
    assert "(at `counters.organization`)" in str(info.value)


@pytest.mark.parametrize("source", ["a\0b.json", 5, None, ["b.json"]], ids=repr)
def test_a_source_that_is_neither_path_nor_bytes_is_a_bundle_error(source: object) -> None:
    """The docstring's promise, BundleError when unusable: a NUL in a path was a ValueError,
    a number or None a TypeError."""
    with pytest.raises(BundleError):
        Router.load(source)  # type: ignore[arg-type]


def test_bytes_in_any_buffer_are_the_bundle_and_a_text_is_quoted_clipped(
    acme_bundle: bytes,
) -> None:
    """A bytearray was taken for a path: its error quoted the whole bundle (42,069
    characters); so does a bundle's text passed where its path belongs."""
    for buffer in (bytearray(acme_bundle), memoryview(acme_bundle)):
        assert Router.load(buffer).bundle.digest == Router.load(acme_bundle).bundle.digest  # type: ignore[arg-type]
    with pytest.raises(BundleError) as caught:
        Router.load(acme_bundle.decode())
    assert len(str(caught.value)) < 400
