import pytest


@pytest.fixture()
def sw(database_url, redis_url):
    from shared_models.shadow_watch import ShadowWatchSync
    from tests.shared_models.ingest.helpers import make_license_key

    client = ShadowWatchSync(database_url, redis_url, make_license_key())
    yield client
    client.close()
