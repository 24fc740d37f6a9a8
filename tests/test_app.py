"""The dashboard through Streamlit's AppTest: pages render, and their widgets change what they show."""

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from ciboard.settings import get_settings

APP = str(Path(__file__).resolve().parent.parent / "app.py")


@pytest.fixture(autouse=True)
def dashboard_on_demo(demo_warehouse, monkeypatch):
    monkeypatch.setenv("CIBOARD_DATA_DIR", str(demo_warehouse.settings.data_dir))
    get_settings.cache_clear()
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    get_settings.cache_clear()


def open_page(path: str, **query) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=60)
    app.query_params.update(query)
    app.run()
    if path:
        app.switch_page(path).run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def test_the_data_map_lists_every_metric_and_searches(demo_warehouse):
    app = open_page("pages/data_map.py")
    assert app.title[0].value == "Data map"
    assert len(app.expander) == 12
    app.text_input(key="q").input("exit ticket").run()
    labels = [e.label for e in app.expander]
    assert labels and all("SEL" in label for label in labels), labels


def test_the_data_map_search_comes_from_the_url(demo_warehouse):
    app = open_page("pages/data_map.py", q="SGP")
    assert app.text_input(key="q").value == "SGP"
    assert [e.label.split("**")[1] for e in app.expander] == ["Met growth target", "Student growth percentile"]
