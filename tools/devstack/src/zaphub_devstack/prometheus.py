"""`EmbeddedPrometheus`: Debian's `prometheus` scraping local targets and evaluating alert rules, for
tests that check the rules against the real services (`apt-get install prometheus`, which also ships
`promtool`)."""

import asyncio
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from zaphub_devstack.errors import ServerError
from zaphub_devstack.output import Output
from zaphub_devstack.ports import LOOPBACK, free_port
from zaphub_devstack.processes import spawn
from zaphub_devstack.server import ChildServer

INSTALL_HINT = "apt-get install prometheus"
# Loopback only: never through an http_proxy from the environment.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class EmbeddedPrometheus(ChildServer):
    """Prometheus on 127.0.0.1:`port` (0: a free one) scraping `jobs` ({job: ["host:port", ...]})
    every `interval` and evaluating `rule_files` as often, with its TSDB under `data_dir`."""

    NAME = "prometheus"

    def __init__(
        self,
        data_dir: Path,
        jobs: dict[str, list[str]],
        rule_files: list[Path],
        *,
        interval: str = "1s",
        port: int = 0,
        binary: str = "prometheus",
        output: Output | None = None,
    ) -> None:
        self.data_dir = data_dir.absolute()
        self.jobs = jobs
        self.rule_files = rule_files
        self.interval = interval
        self.port = port
        self.binary = binary
        self._output: Output = output or self.data_dir / "prometheus.log"

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def _write_config(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = {
            "global": {"scrape_interval": self.interval, "evaluation_interval": self.interval},
            "rule_files": [str(path.absolute()) for path in self.rule_files],
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": targets}]}
                for job, targets in self.jobs.items()
            ],
        }
        path = self.data_dir / "prometheus.yml"
        path.write_text(json.dumps(config, indent=2))  # JSON is YAML: no YAML library needed
        return path

    async def start(self, ready_within: float | None = None) -> None:
        ready_within = self.READY_WITHIN if ready_within is None else ready_within
        if not self.port:
            self.port = free_port()
        argv = [
            self.binary,
            f"--config.file={self._write_config()}",
            f"--storage.tsdb.path={self.data_dir / 'tsdb'}",
            f"--web.listen-address={LOOPBACK}:{self.port}",
        ]
        self._process = await spawn(argv, self._output)
        deadline = time.monotonic() + ready_within
        while time.monotonic() < deadline:
            if not self._process.running:
                raise ServerError(f"prometheus exited with {await self._process.wait()} during start")
            if await asyncio.to_thread(self._ready):
                return
            await asyncio.sleep(0.1)
        await self.kill()
        raise ServerError(f"prometheus not ready after {ready_within} s (see {self._output})")

    def _ready(self) -> bool:
        try:
            with _DIRECT.open(f"{self.url}/-/ready", timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def _get(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with _DIRECT.open(f"{self.url}{path}{query}", timeout=5) as response:
            body = json.load(response)
        if body.get("status") != "success":
            raise ServerError(f"prometheus {path}: {body}")
        return body["data"]

    async def alerts(self) -> list[dict[str, Any]]:
        """Alerts pending or firing now (`/api/v1/alerts`), with their labels and `state`."""
        data = await asyncio.to_thread(self._get, "/api/v1/alerts")
        return list(data["alerts"])

    async def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's result vector."""
        data = await asyncio.to_thread(self._get, "/api/v1/query", query=expr)
        return list(data["result"])
