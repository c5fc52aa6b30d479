"""``deps.one_trip``: a sync route in one trip to a worker thread (in its request's lane),
read by FastAPI as the route itself (parameters, answer model)."""

from __future__ import annotations

import threading
from typing import Annotated

from fastapi import FastAPI, Query, Request
from fastapi.testclient import TestClient
from pydantic import BaseModel

from kontak.web.deps import Lanes, one_trip


class Answer(BaseModel):
    word: str
    times: int


def test_a_one_trip_route_keeps_its_parameters_and_answer_model_and_leaves_the_loop() -> None:
    app = FastAPI()
    app.state.lanes = Lanes(1, wait_s=5)
    threads: list[int] = []

    @app.get("/echo/{word}", response_model=Answer)
    @one_trip
    def echo(
        request: Request, word: str, times: Annotated[int, Query(ge=1)] = 1
    ) -> dict[str, object]:
        assert request.url.path == f"/echo/{word}"
        threads.append(threading.get_ident())
        # The answer model drops what it does not declare.
        return {"word": word * times, "times": times, "secret": "dropped"}

    @app.get("/loop")
    async def loop() -> int:
        return threading.get_ident()

    with TestClient(app) as client:
        assert client.get("/echo/ab", params={"times": 2}).json() == {"word": "abab", "times": 2}
        refused = client.get("/echo/ab", params={"times": 0})
        assert refused.status_code == 422
        assert refused.json()["detail"][0]["loc"] == ["query", "times"]
        loop_thread = client.get("/loop").json()
    assert len(threads) == 1  # the refused call never reached the route
    assert threads[0] != loop_thread
