"""The official AgentWrit Python SDK (agentwrit==0.3.0, unchanged) against Sluice's dev broker."""

from __future__ import annotations

import time

import pytest
from agentwrit import AgentWritApp, scope_is_subset, validate
from agentwrit.errors import AgentWritError, AuthorizationError

TENANTS = ["hospital", "bank", "retail"]


@pytest.fixture(scope="module")
def app(broker):
    # One app for the module: app auth is rate limited per client_id (burst 3), as on the real
    # broker, and the SDK re-authenticates only when its session nears expiry.
    app = AgentWritApp(broker["AGENTWRIT_BROKER_URL"], broker["AGENTWRIT_CLIENT_ID"],
                       broker["AGENTWRIT_CLIENT_SECRET"])
    yield app
    app.close()


def tenant_agent(app, tenant, **kwargs):
    return app.create_agent(
        orch_id="nightly-pipeline",
        task_id=f"etl-{tenant}-{int(time.time())}",
        requested_scope=[f"read:analytics:{tenant}", f"write:reports:{tenant}"],
        **kwargs,
    )


def test_health(app):
    health = app.health()
    assert health.status == "ok"
    assert health.version == "2.0.0"
    assert health.db_connected is True
    assert health.audit_events_count >= 2


def test_create_agent_has_spiffe_id_scope_and_ttl(app):
    agent = tenant_agent(app, "hospital")
    assert agent.agent_id.startswith(
        "spiffe://agentwrit.local/agent/nightly-pipeline/etl-hospital-")
    assert len(agent.agent_id.rsplit("/", 1)[1]) == 16
    assert agent.scope == ["read:analytics:hospital", "write:reports:hospital"]
    assert agent.expires_in == 300
    result = validate(app.broker_url, agent.access_token)
    assert result.valid
    assert result.claims.sub == agent.agent_id
    assert result.claims.scope == agent.scope
    assert result.claims.task_id == agent.task_id
    assert result.claims.orch_id == "nightly-pipeline"
    agent.release()


def test_renew_replaces_token(app):
    agent = tenant_agent(app, "bank")
    old = agent.access_token
    agent.renew()
    assert agent.access_token != old
    assert not app.validate(old).valid
    assert app.validate(agent.access_token).valid
    agent.release()


def test_release_twice_and_released_token_is_invalid(app):
    agent = tenant_agent(app, "retail")
    agent.release()
    agent.release()  # a second release is a no-op, not an error
    result = app.validate(agent.access_token)
    assert not result.valid
    assert result.error == "token is invalid or expired"
    with pytest.raises(AgentWritError, match="released"):
        agent.renew()


@pytest.mark.parametrize("garbage", ["not-a-jwt", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", "x" * 500])
def test_validate_garbage_is_invalid(app, garbage):
    result = app.validate(garbage)
    assert result.valid is False
    assert result.claims is None


def test_delegate_narrower_then_wider_is_forbidden_with_problem_fields(app):
    a = app.create_agent(orch_id="deleg-orch", task_id="task-a",
                         requested_scope=["read:data:*", "write:reports:a"])
    b = app.create_agent(orch_id="deleg-orch", task_id="task-b", requested_scope=["read:data:x"])
    delegated = a.delegate(b.agent_id, ["read:data:reports"], ttl=60)
    assert delegated.expires_in == 60
    assert len(delegated.delegation_chain) == 1
    assert delegated.delegation_chain[0].agent == a.agent_id
    claims = app.validate(delegated.access_token).claims
    assert claims.sub == b.agent_id
    assert claims.scope == ["read:data:reports"]

    with pytest.raises(AuthorizationError) as info:
        a.delegate(b.agent_id, ["write:reports:b"])
    problem = info.value.problem
    assert info.value.status_code == 403
    assert problem.type == "urn:agentwrit:error:scope_violation"
    assert problem.title == "Forbidden"
    assert problem.detail == "delegated scope exceeds delegator scope"
    assert problem.instance == "/v1/delegate"
    assert problem.error_code == "scope_violation"
    assert problem.request_id and len(problem.request_id) == 16
    a.release()
    b.release()


def test_agents_with_disjoint_scopes_are_isolated(app):
    agents = {t: tenant_agent(app, t) for t in TENANTS}
    ids = {a.agent_id for a in agents.values()}
    assert len(ids) == 3
    for t, agent in agents.items():
        for other in TENANTS:
            can_read = scope_is_subset([f"read:analytics:{other}"], agent.scope)
            can_write = scope_is_subset([f"write:reports:{other}"], agent.scope)
            assert can_read == (other == t)
            assert can_write == (other == t)
    for agent in agents.values():
        agent.release()


def test_scope_outside_ceiling_is_403(app):
    with pytest.raises(AuthorizationError) as info:
        app.create_agent(orch_id="o", task_id="t", requested_scope=["admin:revoke:*"])
    assert info.value.status_code == 403
    assert info.value.problem.type == "urn:agentwrit:error:forbidden"


def test_max_ttl_5_expires(app):
    agent = tenant_agent(app, "hospital", max_ttl=5)
    assert agent.expires_in == 5
    assert app.validate(agent.access_token).valid
    time.sleep(7)
    assert not app.validate(agent.access_token).valid


def test_the_seed_pipeline_flow(app):
    """The seed sample's own flow: an agent per tenant, release, then cross-tenant checks."""
    for t in TENANTS:
        agent = tenant_agent(app, t)
        assert scope_is_subset([f"read:analytics:{t}"], agent.scope)
        assert scope_is_subset([f"write:reports:{t}"], agent.scope)
        agent.release()
        assert not app.validate(agent.access_token).valid
    hospital = app.create_agent(orch_id="nightly-pipeline", task_id="cross-tenant-test",
                                requested_scope=["read:analytics:hospital", "write:reports:hospital"])
    assert not scope_is_subset(["read:analytics:bank"], hospital.scope)
    assert not scope_is_subset(["write:reports:retail"], hospital.scope)
    assert scope_is_subset(["read:analytics:hospital"], hospital.scope)
    hospital.release()
