"""The Dockerfile builds one unprivileged image with a health check, and every command run from it exists."""

from __future__ import annotations

import contextlib
import fnmatch
import importlib.util
import io
import re
import tomllib

import pytest

from cartera.cli import main as cartera_main
from tests.deploy.kustomize import pod_spec
from tests.deploy.manifests import CARTERA_KUSTOMIZATIONS, REPO, compose, rendered

DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


def test_the_build_has_a_build_stage_and_a_runtime_stage() -> None:
    stages = [args for word, args in instructions() if word == "FROM"]
    assert len(stages) >= 2, "multi-stage: build the virtualenv, then copy it into a slim runtime"
    assert any(word == "COPY" and args.startswith("--from=build") for word, args in final_stage())


def test_the_runtime_runs_as_an_unprivileged_numeric_user_with_a_health_check() -> None:
    users = [args for word, args in final_stage() if word == "USER"]
    assert users, "the runtime stage must set USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "a numeric non-root user, so runAsNonRoot can verify it"
    healthchecks = [args for word, args in final_stage() if word == "HEALTHCHECK"]
    assert len(healthchecks) == 1 and "/healthz" in healthchecks[0]
    assert any(word == "ENV" and "CARTERA_HOST=0.0.0.0" in args for word, args in final_stage())


def test_the_image_installs_every_workspace_package() -> None:
    build = " ".join(args for word, args in instructions() if word == "RUN")
    for manifest in sorted([*REPO.glob("libs/*/pyproject.toml"), *REPO.glob("services/*/pyproject.toml")]):
        package = manifest.parent.relative_to(REPO).as_posix()
        assert f"./{package}" in build, f"the Dockerfile does not install {package}"


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore keeps `path` (or a folder above it) out of the build context; approximate,
    in the cautious direction: fnmatch's * also crosses folders."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    result = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        bare = pattern.removeprefix("!")
        if any(fnmatch.fnmatch(c, bare) or fnmatch.fnmatch(c, bare.removeprefix("**/")) for c in candidates):
            result = not negated
    return result


def test_the_build_context_keeps_every_file_the_image_needs() -> None:
    patterns = [
        line.strip() for line in DOCKERIGNORE.read_text().splitlines() if line.strip() and not line.startswith("#")
    ]
    needed = ["pyproject.toml"]
    for top in ("libs", "services", "src"):
        needed += [
            p.relative_to(REPO).as_posix()
            for p in (REPO / top).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and not any(x.endswith(".egg-info") for x in p.parts)
        ]
    dropped = [p for p in needed if ignored(p, patterns)]
    assert not dropped, f".dockerignore drops files the image needs: {dropped[:10]}"
    assert ignored(".venv/bin/python", patterns) and ignored(".cartera/keys.env", patterns)


def commands() -> list[list[str]]:
    found = [s["command"] for s in compose()["services"].values() if s.get("image", "").startswith("${CARTERA_IMAGE")]
    for kustomization in CARTERA_KUSTOMIZATIONS:
        for resource in rendered(kustomization):
            spec = pod_spec(resource)
            for c in spec["containers"] if spec else []:
                if c["image"].split("/")[-1].startswith("cartera"):
                    found.append(c["command"])
    return found


def test_compose_and_kubernetes_run_commands_the_image_has() -> None:
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    run = commands()
    assert len(run) >= 5 * (1 + len(CARTERA_KUSTOMIZATIONS))
    for command in run:
        if command[:2] == ["python", "-m"]:
            assert importlib.util.find_spec(f"{command[2]}.__main__") is not None, command
        else:
            assert command[0] in scripts, command
            with pytest.raises(SystemExit) as exit_info, contextlib.redirect_stdout(io.StringIO()):
                cartera_main([*command[1:], "--help"])
            assert exit_info.value.code == 0, command
