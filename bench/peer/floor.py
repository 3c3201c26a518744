"""The HTTP floor: a one-route FastAPI app taking a small pydantic body, on the server `casestream serve` uses
(casestream/asgi_server.py). Whatever a case API does per request comes on top of this.

    python bench/peer/floor.py --port 8100 [--server uvicorn|granian]
"""

from __future__ import annotations

import argparse
import sys
import uuid
from pathlib import Path

from fastapi import FastAPI
from pydantic import BaseModel, Field

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from casestream.asgi_server import run

app = FastAPI()


class Item(BaseModel):
    """A body of about the size of a case's create request."""

    title: str = Field(max_length=200)
    amount: float = Field(ge=0)
    category: str = Field(max_length=40)
    tags: list[str] = []


@app.post("/items", status_code=201)
async def create(item: Item) -> dict[str, str | float]:
    return {"id": str(uuid.uuid4()), "title": item.title, "amount": item.amount}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--server", choices=["uvicorn", "granian"], default="uvicorn")
    args = parser.parse_args()
    run(app, args.host, args.port, args.server)


if __name__ == "__main__":
    main()
