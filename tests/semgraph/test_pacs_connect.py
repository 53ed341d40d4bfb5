"""The one DICOMweb connection (semgraph.exchange.pacs) against a real Orthanc."""

import pytest
import requests

from semgraph.config import Config
from semgraph.errors import ConfigurationError, PacsError
from semgraph.exchange.pacs import connect, pacs_call, pacs_url


def test_credentials_from_settings_reach_the_pacs(orthanc):
    config = Config.load({"dicomweb_user": orthanc.auth[0], "dicomweb_password": orthanc.auth[1]}, environ={})
    client = connect(config, orthanc.dicomweb_url)
    found = pacs_call(client, "search studies", client.search_for_studies)
    # whatever other tests left on the shared PACS: the same studies Orthanc's own REST API lists
    held = requests.get(f"{orthanc.url}/studies", auth=orthanc.auth, timeout=30).json()
    assert isinstance(found, list) and len(found) == len(held)
    assert orthanc.auth[1] not in repr(config)


def test_wrong_credentials_are_a_clear_error(orthanc):
    config = Config.load({"dicomweb_user": "nobody", "dicomweb_password": "wrong"}, environ={})
    client = connect(config, orthanc.dicomweb_url)
    with pytest.raises(PacsError, match="refused the credentials"):
        pacs_call(client, "search studies", client.search_for_studies)


def test_a_pacs_that_is_down_is_a_clear_error():
    from kg.server import free_loopback_port

    client = connect(Config.load({"dicomweb_timeout": 2.0}, environ={}),
                     f"http://127.0.0.1:{free_loopback_port()}/dicom-web")
    with pytest.raises(PacsError, match="cannot reach"):
        pacs_call(client, "search studies", client.search_for_studies)


def test_no_url_configured():
    with pytest.raises(ConfigurationError, match="SEMGRAPH_DICOMWEB_URL"):
        pacs_url(Config.load({}, environ={}))
    with pytest.raises(ConfigurationError, match="http"):
        pacs_url(Config.load({}, environ={}), "ftp://pacs")
