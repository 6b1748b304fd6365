"""Small fakes of LaunchDarkly's and Langfuse's documented admin APIs, served on loopback.

They check what the real services check: the token, the semantic-patch content type,
the instruction's shape, and label uniqueness across prompt versions.
"""

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

SEMANTIC_PATCH = "application/json; domain-model=launchdarkly.semanticpatch"


class FakeLaunchDarkly:
    """One project, flags with variations and per-environment fallthroughs."""

    def __init__(self, *, token: str, project: str = "default") -> None:
        self.token = token
        self.project = project
        self.flags: dict[str, dict[str, Any]] = {}
        self.patches: list[dict[str, Any]] = []
        self.app = FastAPI()
        self.app.get("/api/v2/flags/{project}/{flag}")(self._get)
        self.app.patch("/api/v2/flags/{project}/{flag}")(self._patch)

    def add_flag(self, key: str, *, variations: list[str], serving: str, env: str) -> None:
        """A flag whose variations are named like agent versions, serving one of them."""
        self.flags[key] = {
            "key": key,
            "variations": [
                {"_id": f"id-{name}", "value": {"prompt": name}, "name": name}
                for name in variations
            ],
            "environments": {
                env: {
                    "on": True,
                    "fallthrough": {"variation": variations.index(serving)},
                    "offVariation": 0,
                    "_environmentName": env,
                }
            },
        }

    def serving(self, key: str, env: str) -> str:
        """The variation name the fallthrough serves."""
        flag = self.flags[key]
        return flag["variations"][flag["environments"][env]["fallthrough"]["variation"]]["name"]

    def _denied(self, request: Request) -> JSONResponse | None:
        if request.headers.get("authorization") != self.token:
            return JSONResponse(
                {"code": "unauthorized", "message": "Invalid account ID header"}, 401
            )
        return None

    def _get(self, project: str, flag: str, request: Request) -> JSONResponse:
        denied = self._denied(request)
        if denied:
            return denied
        if project != self.project or flag not in self.flags:
            return JSONResponse({"code": "not_found", "message": "Unknown resource"}, 404)
        body = dict(self.flags[flag])
        env = request.query_params.get("env")
        if env:  # ?env= narrows environments to the ones asked for, as documented
            body["environments"] = {
                k: v for k, v in body["environments"].items() if k in env.split(",")
            }
        return JSONResponse(body)

    async def _patch(self, project: str, flag: str, request: Request) -> JSONResponse:
        denied = self._denied(request)
        if denied:
            return denied
        if request.headers.get("content-type") != SEMANTIC_PATCH:
            return JSONResponse({"code": "invalid_request", "message": "not a semantic patch"}, 400)
        if project != self.project or flag not in self.flags:
            return JSONResponse({"code": "not_found", "message": "Unknown resource"}, 404)
        body = await request.json()
        self.patches.append(body)
        stored = self.flags[flag]
        env = stored["environments"].get(body.get("environmentKey"))
        if env is None:
            return JSONResponse({"code": "invalid_request", "message": "unknown environment"}, 400)
        for instruction in body.get("instructions", []):
            if instruction.get("kind") != "updateFallthroughVariationOrRollout":
                return JSONResponse({"code": "invalid_request", "message": "unknown kind"}, 400)
            ids = [v["_id"] for v in stored["variations"]]
            if instruction.get("variationId") not in ids:
                return JSONResponse(
                    {"code": "invalid_request", "message": "unknown variation"}, 400
                )
            env["fallthrough"] = {"variation": ids.index(instruction["variationId"])}
        return JSONResponse(stored)


class FakeLangfuse:
    """Prompts with numbered versions and labels unique across a prompt's versions."""

    def __init__(self, *, public_key: str, secret_key: str) -> None:
        self.keys = (public_key, secret_key)
        self.prompts: dict[str, dict[int, list[str]]] = {}
        self.patches: list[tuple[str, int, list[str]]] = []
        self.app = FastAPI()
        self.app.get("/api/public/v2/prompts/{name}")(self._get)
        self.app.patch("/api/public/v2/prompts/{name}/versions/{version}")(self._patch)

    def add_prompt(self, name: str, *, versions: int, production: int) -> None:
        """A prompt with versions 1..n, the production label on one of them."""
        self.prompts[name] = {
            n: (["production"] if n == production else []) + (["latest"] if n == versions else [])
            for n in range(1, versions + 1)
        }

    def holder(self, name: str, label: str = "production") -> int | None:
        """The version that holds the label."""
        return next((n for n, labels in self.prompts[name].items() if label in labels), None)

    def _denied(self, request: Request) -> JSONResponse | None:
        import base64

        expected = "Basic " + base64.b64encode(":".join(self.keys).encode()).decode()
        if request.headers.get("authorization") != expected:
            return JSONResponse({"message": "Invalid credentials"}, 401)
        return None

    def _prompt(self, name: str, version: int) -> dict[str, Any]:
        return {
            "name": name,
            "version": version,
            "type": "text",
            "prompt": f"{name} v{version}",
            "labels": self.prompts[name][version],
            "tags": [],
            "config": {},
        }

    def _get(self, name: str, request: Request) -> JSONResponse:
        denied = self._denied(request)
        if denied:
            return denied
        label = request.query_params.get("label", "production")
        if name not in self.prompts or self.holder(name, label) is None:
            return JSONResponse({"message": f"Prompt not found: {name} {label}"}, 404)
        return JSONResponse(self._prompt(name, self.holder(name, label)))  # type: ignore[arg-type]

    async def _patch(self, name: str, version: int, request: Request) -> JSONResponse:
        denied = self._denied(request)
        if denied:
            return denied
        if name not in self.prompts or version not in self.prompts[name]:
            return JSONResponse({"message": "Prompt version not found"}, 404)
        new_labels = (await request.json()).get("newLabels")
        if not isinstance(new_labels, list) or "latest" in new_labels:
            return JSONResponse({"message": "newLabels must be a list without 'latest'"}, 400)
        self.patches.append((name, version, new_labels))
        for labels in self.prompts[name].values():  # a label lives on one version only
            labels[:] = [label for label in labels if label not in new_labels]
        self.prompts[name][version].extend(new_labels)
        return JSONResponse(self._prompt(name, version))
