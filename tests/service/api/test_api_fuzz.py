"""Property-based fuzzing of the API from `openapi.yaml` (schemathesis): requests generated from the
contract, valid and invalid, against a real `docextract serve` process with an API key; no answer may be a
5xx or differ from the contract."""

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import positive_data_acceptance

from service.settings import Settings
from tests.service.support import DocextractProcess, free_port, is_ready, wait_for

ROOT = Path(__file__).resolve().parents[3]
schema = schemathesis.openapi.from_path(ROOT / "openapi.yaml")
API_KEY = "fuzz-key-0123456789"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, serving_model: Path) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("fuzz")
    options = Settings(
        data_dir=folder / "data",
        default_model_dir=serving_model,
        port=free_port(),
        model_threads=1,
        ocr_workers=1,
        queue_poll_s=0.1,
        max_pages=3,
        api_keys=[API_KEY],
    )
    base = f"http://127.0.0.1:{options.port}"

    with DocextractProcess(["serve"], options, folder / "serve.log") as process:
        wait_for(lambda: is_ready(base), 60, 0.2)
        yield base
        assert process.process is not None and process.process.poll() is None, process.output()[-2000:]


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_requests_from_the_contract_get_documented_answers(case, server: str):
    """Every built-in check: no 5xx, documented status codes, content types, headers and bodies, `Allow`
    on 405s, and (the server has an API key) requests without or with a wrong key refused. Except one:
    schema-valid data may be refused, since the schema cannot say everything (a box inside its page, a
    callback URL that resolves to a public address, a document id that exists)."""
    headers = {"X-API-Key": API_KEY}
    response = case.call(base_url=server, headers=headers, timeout=60)
    case.validate_response(response, headers=headers, excluded_checks=[positive_data_acceptance])
