"""A fake Langfuse on loopback: GET /api/public/v2/observations by cursor, POST scores."""

import base64
from typing import Any

from fastapi import FastAPI, HTTPException, Request

PUBLIC, SECRET = "pk-lf-test", "sk-lf-test-secret"


class FakeLangfuse:
    """Observations served oldest first, `page` at a time; scores kept by id (upsert)."""

    def __init__(self, *, page: int = 2) -> None:
        self.page = page
        self.observations: list[dict[str, Any]] = []
        self.scores: dict[str, dict[str, Any]] = {}
        self.score_posts = 0
        self.fail_next_pages = 0  # answer 500 to this many page requests after the first
        self.pages_served = 0
        self.app = self._app()

    def _app(self) -> FastAPI:
        app = FastAPI()

        def authorised(request: Request) -> None:
            expected = base64.b64encode(f"{PUBLIC}:{SECRET}".encode()).decode()
            if request.headers.get("authorization") != f"Basic {expected}":
                raise HTTPException(401, "unauthorised")

        @app.get("/api/public/v2/observations")
        def observations(
            request: Request,
            cursor: str | None = None,
            fromStartTime: str | None = None,
        ) -> dict[str, Any]:
            authorised(request)
            if self.pages_served and self.fail_next_pages:
                self.fail_next_pages -= 1
                raise HTTPException(500, "boom")
            self.pages_served += 1
            ordered = sorted(self.observations, key=lambda o: (o["startTime"], o["id"]))
            if fromStartTime:
                ordered = [o for o in ordered if o["startTime"] >= fromStartTime]
            start = int(base64.b64decode(cursor).decode()) if cursor else 0
            data = ordered[start : start + self.page]
            more = start + self.page < len(ordered)
            next_cursor = base64.b64encode(str(start + self.page).encode()).decode()
            return {"data": data, "meta": {"cursor": next_cursor if more else None}}

        @app.post("/api/public/scores")
        async def scores(request: Request) -> dict[str, Any]:
            authorised(request)
            body = await request.json()
            self.score_posts += 1
            self.scores[body["id"]] = body
            return {"id": body["id"]}

        return app
