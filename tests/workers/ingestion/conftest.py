import pytest


@pytest.fixture()
def sw(database_url, redis_url):
    from shadowwatch import ShadowWatchSync
    from tests.workers.ingestion.helpers import make_license_key

    client = ShadowWatchSync(database_url, redis_url, make_license_key())
    yield client
    client.close()
