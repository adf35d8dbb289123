"""The quicker botocore data loader answers as botocore's own: the same services, models and errors."""

from __future__ import annotations

import botocore.session
import pytest
from botocore.exceptions import UnknownServiceError
from botocore.loaders import Loader

from backend.core.botocore_data import quick_loader


@pytest.mark.parametrize("type_name", ["service-2", "endpoint-rule-set-1", "paginators-1", "waiters-2"])
def test_it_knows_exactly_the_services_botocore_knows(type_name: str) -> None:
    ours = quick_loader(None).list_available_services(type_name)
    theirs = Loader().list_available_services(type_name)
    assert list(ours) == theirs and len(ours) == len(theirs)
    every_folder = set(Loader().list_available_services("service-2"))
    for name in every_folder | {"no-such-service", "", "..", "dynamodb/2012-08-10"}:
        assert (name in ours) == (name in theirs), name


def test_a_client_made_with_it_is_botocores_and_an_unknown_service_is_refused_alike() -> None:
    session = botocore.session.Session()
    session.register_component("data_loader", quick_loader(session.get_config_variable("data_path")))
    session.set_credentials("key", "secret")
    client = session.create_client("dynamodb", region_name="eu-west-1", endpoint_url="http://127.0.0.1:9")
    assert client.meta.service_model.api_version == "2012-08-10"
    assert client.can_paginate("query")
    with pytest.raises(UnknownServiceError, match="dynamodbx"):
        session.create_client("dynamodbx", region_name="eu-west-1")
