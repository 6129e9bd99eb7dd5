"""The test processes' deferred URL builders (tests/lazyroutes.py) build the same URLs."""

from __future__ import annotations

from flask import Flask, url_for

from tests.lazyroutes import deferred


def test_the_suite_defers_and_urls_build_as_before(app):
    assert deferred(), "werkzeug no longer has Rule._compile_builder: tests/lazyroutes.py defers nothing"
    with app.test_request_context("/"):
        assert url_for("web.static", filename="web.css") == "/web/static/web.css"
        assert url_for("plans.get_plan", date="2026-12-01") == "/v1/plans/2026-12-01"
        assert url_for("plans.get_plan", date="2026-12-01", version=2) == "/v1/plans/2026-12-01?version=2"
        assert url_for("web.agent_page", _external=True) == "http://localhost/web/agent"


def test_a_rule_compiles_its_builders_once_on_first_use(monkeypatch):
    from tests import lazyroutes

    compiled = []
    original = lazyroutes._ORIGINAL
    assert original is not None

    def counted(rule, *args, **kwargs):
        compiled.append(rule.endpoint)
        return original(rule, *args, **kwargs)

    monkeypatch.setattr(lazyroutes, "_ORIGINAL", counted)
    plain = Flask("plain")
    plain.add_url_rule("/v/<int:n>", "v", lambda n: str(n))
    rule = next(r for r in plain.url_map.iter_rules() if r.endpoint == "v")
    build = rule._build
    assert compiled == []  # adding the rule compiled no builder
    with plain.test_request_context("/"):
        assert url_for("v", n=3) == "/v/3" and url_for("v", n=4, q="x") == "/v/4?q=x"
        assert url_for("v", n=5) == "/v/5"
    assert compiled == ["v"]  # one compile for three URLs (url_for builds with the builder made for it)
    assert rule._build is build  # the same deferred builder, now holding the compiled one
    assert plain.test_client().get("/v/7").get_data(as_text=True) == "7"  # matching never needed it
