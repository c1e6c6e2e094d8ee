"""A Ray cluster of real `ray start` nodes on this machine, for the sweep tests and the scaling benchmark."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TwoNodeCluster:
    """`ray start --head` and a second `ray start --address`, each its own raylet with 1 CPU, on this machine; the
    head optionally declaring a (fake) GPU. Stopped by killing exactly its own processes and their children (not
    `ray stop`, which would stop every Ray on the machine)."""

    def __init__(self, env_extra: dict | None = None):
        """``env_extra``: variables for the nodes' processes (a `ray start` node's workers get its environment,
        not the driver's)."""
        import shutil
        self.ray = shutil.which("ray", path=str(Path(sys.executable).parent)) or "ray"
        self.port = _free_port()
        self.env = dict(os.environ, RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0", **(env_extra or {}))
        self.address = f"127.0.0.1:{self.port}"
        self.head_pids: set = set()
        self.worker_pids: set = set()

    def _own(self) -> set:
        out = subprocess.run(["ps", "-eww", "-o", "pid,args"], capture_output=True, text=True).stdout.splitlines()[1:]
        return {int(l.split(None, 1)[0]) for l in out if str(self.port) in l} - {os.getpid()}

    def start(self, head_gpus: int = 0, nodes: int = 2):
        common = ["--num-cpus", "1", "--disable-usage-stats"]
        try:
            subprocess.run([self.ray, "start", "--head", "--port", str(self.port), "--include-dashboard", "false",
                            "--num-gpus", str(head_gpus)] + common, env=self.env, check=True, capture_output=True,
                           timeout=120)
            self.head_pids = self._own()
            if nodes < 2:
                return self
            subprocess.run([self.ray, "start", "--address", self.address, "--num-gpus", "0"] + common, env=self.env,
                           check=True, capture_output=True, timeout=120)
            self.worker_pids = self._own() - self.head_pids
        except BaseException:
            self.stop()
            raise
        return self

    def nodes(self) -> list[dict]:
        code = ("import json, ray; ray.init(address=%r, log_to_driver=False); "
                "print(json.dumps([{'id': n['NodeID'][:12], 'gpus': n['Resources'].get('GPU', 0)} "
                "for n in ray.nodes() if n['Alive']]))" % self.address)
        out = subprocess.run([sys.executable, "-c", code], env=self.env, capture_output=True, text=True, timeout=120)
        return json.loads(out.stdout.strip().splitlines()[-1])

    @staticmethod
    def _kill_tree(pids):
        import signal
        out = subprocess.run(["ps", "-eo", "pid,ppid"], capture_output=True, text=True).stdout.splitlines()[1:]
        children = {}
        for l in out:
            a, b = map(int, l.split())
            children.setdefault(b, []).append(a)
        todo, seen = list(pids), set()
        while todo:
            p = todo.pop()
            if p in seen:
                continue
            seen.add(p)
            todo += children.get(p, [])
        for p in seen:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def kill_worker_node(self):
        self._kill_tree(self.worker_pids)

    def stop(self):
        self._kill_tree(self._own() | self.head_pids | self.worker_pids)
        marker = Path("/tmp/ray/ray_current_cluster")   # `ray start` leaves its address for later ray.init() calls
        try:
            if self.address.split(":")[-1] in marker.read_text():
                marker.unlink()
        except OSError:
            pass
