"""``python -m churn.serving``: uvicorn on CHURN_HOST:CHURN_PORT with CHURN_WORKERS workers."""

from __future__ import annotations

import uvicorn

from churn.serving.settings import Settings


def main() -> None:
    settings = Settings()
    uvicorn.run("churn.serving.app:create_app", factory=True, host=settings.host, port=settings.port,
                workers=settings.workers, loop="uvloop", http="httptools", log_level="info")


if __name__ == "__main__":
    main()
