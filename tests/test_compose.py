"""docker-compose.yml against the official Compose Specification JSON schema (vendored, with its
licence, in the check-jsonschema wheel), and against what the flows expect: pool names, the shared
data volume, files it builds from. There is no Docker daemon on these machines to bring it up."""

from __future__ import annotations

import copy
import json
from importlib import resources

import jsonschema
import pytest
import yaml

from flows.deploy import CPU_POOL, GPU_POOL

from .conftest import REPO

COMPOSE = REPO / "docker-compose.yml"
HMMR_SERVICES = ("worker-cpu", "worker-gpu", "hmmr")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema_file = resources.files("check_jsonschema") / "builtin_schemas/vendor/compose-spec.json"
    schema = json.loads(schema_file.read_text())
    assert schema["title"] == "Compose Specification"
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def test_compose_file_follows_the_compose_specification(compose, validator):
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(compose)]
    assert errors == []


@pytest.mark.parametrize("breakage", ["unknown key", "ports as a string", "bad depends_on condition"])
def test_the_schema_catches_broken_compose_files(compose, validator, breakage):
    broken = copy.deepcopy(compose)
    service = broken["services"]["worker-cpu"]
    if breakage == "unknown key":
        service["enviroment"] = service.pop("environment")
    elif breakage == "ports as a string":
        broken["services"]["prefect-server"]["ports"] = "4200:4200"
    else:
        service["depends_on"]["prefect-server"]["condition"] = "service_ready"
    assert list(validator.iter_errors(broken))


def test_services_fit_the_flows(compose):
    services = compose["services"]
    assert {"postgres", "prefect-server", "worker-cpu", "worker-gpu", "openpose", "hmmr"} <= set(services)
    assert services["worker-cpu"]["entrypoint"][:5] == ["prefect", "worker", "start", "--pool", CPU_POOL]
    assert services["worker-gpu"]["entrypoint"][:5] == ["prefect", "worker", "start", "--pool", GPU_POOL]
    assert services["worker-gpu"]["profiles"] == ["gpu"] and "openpose" in services["worker-gpu"]["depends_on"]
    gpu = services["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["capabilities"] == ["gpu"] and gpu["count"] == 1
    for name in HMMR_SERVICES:
        env = services[name]["environment"]
        assert env["HMMR_HOME"] == "/data" and "hmmr-data:/data" in services[name]["volumes"]
        assert env["PREFECT_API_URL"] == "http://prefect-server:4200/api"
        assert env["HMMR_CATALOG"].startswith("postgres:")
    assert "hmmr-data:/data" in services["openpose"]["volumes"]
    server_env = services["prefect-server"]["environment"]
    assert server_env["PREFECT_API_DATABASE_CONNECTION_URL"].startswith("postgresql+asyncpg://")
    assert server_env["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"


def test_files_the_compose_file_names_exist(compose):
    for name, service in compose["services"].items():
        build = None if name == "openpose" else service.get("build")  # docker/openpose/ comes with issue 4
        if build:
            context = REPO / build["context"]
            assert context.is_dir(), name
            if "dockerfile" in build:
                assert (context / build["dockerfile"]).is_file(), name
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (REPO / source).exists(), f"{name}: {source}"
    dockerfile = (REPO / "docker/hmmr/Dockerfile").read_text()
    for line in dockerfile.splitlines():
        if line.startswith("COPY "):
            for path in line.split()[1:-1]:
                assert (REPO / path).exists(), line
