"""An asyncua OPC UA server for tests, in a thread of its own; stop and start it again."""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime
from typing import Any

from haeryu.bench.servers import free_port

NAMESPACE = "urn:haeryu:test"


class OpcUaServer:
    """``Plant`` object with ``Temperature``, ``Pressure`` (Double) and ``Mode`` (String).

    Node ids are strings in namespace 2 (``ns=2;s=Temperature``), the same after every
    restart, as on a real device.
    """

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.endpoint = f"opc.tcp://127.0.0.1:{self.port}/haeryu/"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: Any = None
        self._vars: dict[str, Any] = {}

    def start(self) -> OpcUaServer:
        ready = threading.Event()
        failed: list[BaseException] = []
        self._loop = asyncio.new_event_loop()

        def main() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            try:
                self._loop.run_until_complete(self._start())
            except BaseException as exc:
                failed.append(exc)
                ready.set()
                return
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=main, name="opcua-server", daemon=True)
        self._thread.start()
        ready.wait(60)
        if failed:
            raise failed[0]
        return self

    async def _start(self) -> None:
        from asyncua import Server, ua

        server = Server()
        await server.init()
        server.set_endpoint(self.endpoint)
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        idx = await server.register_namespace(NAMESPACE)
        plant = await server.nodes.objects.add_object(
            ua.NodeId("Plant", idx), ua.QualifiedName("Plant", idx)
        )
        self._vars["Temperature"] = await plant.add_variable(
            ua.NodeId("Temperature", idx), ua.QualifiedName("Temperature", idx), 20.0
        )
        self._vars["Pressure"] = await plant.add_variable(
            ua.NodeId("Pressure", idx), ua.QualifiedName("Pressure", idx), 1.0
        )
        self._vars["Mode"] = await plant.add_variable(
            ua.NodeId("Mode", idx), ua.QualifiedName("Mode", idx), "idle"
        )
        await server.start()
        self._server = server

    def write(
        self, name: str, value: Any, source_time: datetime, *, uncertain: bool = False
    ) -> None:
        """Set a variable with its source timestamp (``uncertain``: UncertainLastUsableValue)."""
        from asyncua import ua

        good = ua.StatusCodes.Good
        status = ua.StatusCode(ua.StatusCodes.UncertainLastUsableValue if uncertain else good)
        dv = ua.DataValue(ua.Variant(value), StatusCode=status, SourceTimestamp=source_time)
        self._call(self._vars[name].write_value(dv))

    def _call(self, coro: Any) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(30)

    def stop(self) -> None:
        if self._server is None or self._loop is None or self._thread is None:
            return
        self._call(self._server.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._loop.close()
        self._server = None
