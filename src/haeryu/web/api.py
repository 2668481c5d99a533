"""The REST API under ``/api`` (OpenAPI docs at ``/docs``): topics, groups, SQL, models."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field

from haeryu.alerts.rules import AlertRule
from haeryu.web.state import WebState

__all__ = ["api_router"]


class SqlRequest(BaseModel):
    sql: str = Field(..., min_length=1, description="SQL over the lake's tables (DuckDB).")
    max_rows: int = Field(1000, ge=1, le=100_000)


class SavedQuery(BaseModel):
    name: str = Field(..., min_length=1, max_length=64)
    sql: str = Field(..., min_length=1)


def api_router(state: WebState) -> APIRouter:
    """The API's routes, bound to one :class:`WebState`."""
    router = APIRouter(prefix="/api")

    @router.get("/status", tags=["stack"], summary="Processes, their state, events/s and lag")
    def status() -> dict[str, Any]:
        sample = state.sampler.latest
        return {
            **state.status(),
            "topic_rate": sample.topic_rate,
            "storage_bytes": state.storage(),
            "sampled_at": sample.at,
        }

    @router.get("/pipelines", tags=["stack"], summary="Pipelines: topics, group, stores, health")
    def pipelines() -> list[dict[str, Any]]:
        running = {p["name"]: p for p in state.status().get("processes", [])}
        sample = state.sampler.latest
        return [
            {
                "name": spec.name,
                "description": spec.description,
                "reads": list(spec.reads),
                "writes": list(spec.writes),
                "group": spec.group,
                "stores": list(spec.stores),
                "state": running.get(spec.name, {}).get("state", "not running"),
                "restarts": running.get(spec.name, {}).get("restarts", 0),
                "events_per_s": sample.process_rate(spec),
                "lag": sample.process_lag(spec),
            }
            for spec in state.specs
            if spec.kind == "pipeline"
        ]

    @router.get("/search/indices", tags=["search"], summary="Indexes of the search store")
    def search_indices() -> list[str]:
        return list(state.search_store().indices())

    @router.post("/search/{index}", tags=["search"], summary="Search (Elasticsearch body)")
    def search(index: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        from haeryu.stores.search.errors import SearchError

        try:
            return dict(state.search_store().search(index, body or {}))
        except SearchError as exc:
            raise HTTPException(exc.status, str(exc)) from None

    @router.get("/topics", tags=["topics"], summary="Topics with partitions, records and events/s")
    def topics() -> list[dict[str, Any]]:
        rates = state.sampler.latest.topic_rate
        return [
            {
                "name": t.name,
                "partitions": t.partitions,
                "records": t.records,
                "end_offsets": t.end_offsets,
                "events_per_s": rates.get(t.name),
            }
            for t in state.view.topics()
        ]

    @router.get("/topics/{topic}/records", tags=["topics"], summary="The latest records of a topic")
    def records(
        topic: str,
        limit: int = Query(50, ge=1, le=1000),
        partition: int | None = Query(None, ge=0),
    ) -> list[dict[str, Any]]:
        try:
            return [asdict(r) for r in state.view.recent(topic, limit, partition)]
        except KeyError:
            raise HTTPException(404, f"no topic {topic!r}") from None

    @router.get("/groups", tags=["consumer groups"], summary="Consumer groups and their lag")
    def groups() -> list[dict[str, Any]]:
        return [
            {
                "group": g.group,
                "state": g.state,
                "topics": g.topics,
                "lag": g.total_lag,
                "partitions": [
                    {"topic": t, "partition": p, "committed": off, "lag": g.lag.get((t, p), 0)}
                    for (t, p), off in sorted(g.committed.items())
                ],
            }
            for g in state.view.groups()
        ]

    @router.post("/sql", tags=["sql"], summary="Run SQL over the warehouse")
    def sql(request: SqlRequest) -> dict[str, Any]:
        from haeryu.stores.warehouse import WarehouseError

        try:
            return state.sql(request.sql).to_dict(request.max_rows)
        except WarehouseError as exc:
            raise HTTPException(400, str(exc)) from None

    @router.get("/sql/tables", tags=["sql"], summary="Tables of the lake and their columns")
    def tables() -> dict[str, list[str]]:
        return state.tables()

    @router.get("/sql/saved", tags=["sql"], summary="Saved queries")
    def saved() -> dict[str, str]:
        return state.saved_queries()

    @router.post("/sql/saved", tags=["sql"], summary="Save a query under a name")
    def save(query: SavedQuery) -> dict[str, str]:
        try:
            state.save_query(query.name, query.sql)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        return state.saved_queries()

    @router.delete("/sql/saved/{name}", tags=["sql"], summary="Delete a saved query")
    def delete(name: str) -> dict[str, str]:
        if not state.delete_query(name):
            raise HTTPException(404, f"no saved query {name!r}")
        return state.saved_queries()

    @router.get("/models", tags=["models"], summary="Models of the registry, latest versions")
    def models() -> list[dict[str, Any]]:
        from haeryu.stores.models.registry import ModelRegistry

        registry = ModelRegistry(state.settings.data_dir / "models")
        return [asdict(info) for info in registry.list()]

    @router.get("/alerts/rules", tags=["alerts"], summary="Alert rules")
    def alert_rules() -> list[AlertRule]:
        return state.alerts.rules()

    @router.post("/alerts/rules", tags=["alerts"], summary="Create a rule (or replace one by id)")
    def save_rule(rule: AlertRule) -> AlertRule:
        return state.alerts.save_rule(rule)

    @router.put("/alerts/rules/{rule_id}", tags=["alerts"], summary="Change a rule")
    def change_rule(rule_id: str, rule: AlertRule) -> AlertRule:
        if rule_id not in {r.id for r in state.alerts.rules()}:
            raise HTTPException(404, f"no rule {rule_id!r}")
        return state.alerts.save_rule(rule.model_copy(update={"id": rule_id}))

    @router.delete("/alerts/rules/{rule_id}", tags=["alerts"], summary="Delete a rule")
    def delete_rule(rule_id: str) -> dict[str, str]:
        if not state.alerts.delete_rule(rule_id):
            raise HTTPException(404, f"no rule {rule_id!r}")
        return {"deleted": rule_id}

    @router.get("/alerts/events", tags=["alerts"], summary="Rule history: fired and resolved")
    def alert_events(limit: int = Query(200, ge=1, le=10_000)) -> list[dict[str, Any]]:
        return state.alerts.events(limit)

    @router.post("/alerts/events/{event_id}/ack", tags=["alerts"], summary="Acknowledge")
    def ack(event_id: str) -> dict[str, str]:
        if not state.alerts.ack(event_id):
            raise HTTPException(404, f"no alert event {event_id!r}")
        return {"acked": event_id}

    return router
