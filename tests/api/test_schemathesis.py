"""Property-based run over /openapi.json (schemathesis, bounded): valid and invalid requests to every
operation of a real server; 0 server errors, every response documented and matching its schema.

The operations are driven with hypothesis directly (schemathesis' pytest loader does not run under
this pytest); the checks are schemathesis' own.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)

from tests.workers.shadow.conftest import registry_db  # noqa: F401 (fixture: shadow tables wiped after)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = 20  # per operation and mode: ~30 operations x 2 modes, well under a minute


def test_every_operation(api_server, keys, registry_db):  # noqa: F811
    schema = schemathesis.openapi.from_url(api_server.url + "/openapi.json")
    schema.config.generation.update(allow_x00=False)
    headers = {"Authorization": f"Bearer {keys['admin']}"}
    failures: list[str] = []
    ran = 0
    for result in schema.get_all_operations():
        op = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            seen = {"n": 0}

            # /health answers 503 by contract when a pool has no worker (none run here): schema checks only
            checks = CHECKS[1:] if op.label == "GET /health" else CHECKS

            @given(case=op.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                      suppress_health_check=list(HealthCheck))
            def run(case):
                seen["n"] += 1
                case.call_and_validate(base_url=api_server.url, headers=headers, checks=checks, timeout=60)

            try:
                run()
            except Unsatisfiable:  # no invalid request exists (e.g. an operation without parameters)
                pass
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collect every failure, then report
                failures.append(f"{op.label} [{mode.value}]: {str(exc)[:1500]}")
            ran += seen["n"]
    assert ran > 0
    assert not failures, "\n\n".join(failures)
