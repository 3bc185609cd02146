"""A Ray sweep on a simulated two-node cluster (ray.cluster_utils: a head without CPUs and two
1-CPU raylets on this machine) losing the node that runs a point: the point moves to the other
node and resumes from its checkpoint. Same xdist group as the other Ray tests: one cluster at a time."""

import json
import os
import subprocess
import sys

import pytest
from conftest import train_steps, wait_for
from ray.cluster_utils import Cluster

pytestmark = [pytest.mark.xdist_group("ray"), pytest.mark.ray]


def raylet_pid(node) -> int:
    [raylet] = [process for kind, process in node.live_processes() if kind == "raylet"]
    return raylet.pid


def parent_pid(pid: int) -> int:
    return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])


def test_a_point_on_a_lost_node_is_rescheduled_and_resumed(tmp_path):
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    nodes = [cluster.add_node(num_cpus=1) for _ in range(2)]
    try:
        cluster.wait_for_nodes()
        out = tmp_path / "sw"
        sweep = subprocess.Popen(
            [sys.executable, "-m", "drlab.cli", "sweep", "dqn", "CartPole-v1", "--seeds", "0", "--out", str(out),
             "--set", "total_steps=6000", "--set", "learning_starts=500", "--set", "eval_interval=0",
             "--set", "final_eval_episodes=3", "--set", "log_interval=500", "--set", "checkpoint_interval=2000",
             "--backend", "ray", "--address", cluster.address],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        run_dir = out / "s0"
        wait_for((run_dir / "checkpoints" / "latest.pt").exists, sweep, "the point's first checkpoint")
        worker = json.loads((run_dir / "lock").read_text())["pid"]
        [busy] = [node for node in nodes if raylet_pid(node) == parent_pid(worker)]
        cluster.remove_node(busy, allow_graceful=False)
        stdout, stderr = sweep.communicate(timeout=300)
        assert sweep.returncode == 0, stderr
        assert "ray: 2 CPUs on 3 nodes" in stdout
        assert "s0: its worker died; running it again from its last checkpoint" in stdout
        [point] = json.loads((out / "sweep.json").read_text())["points"]
        assert point["status"] == "ok" and point["summary"]["steps"] == 6000
        steps = train_steps(run_dir)
        assert steps == sorted(set(steps)) and len(steps) == 12
    finally:
        cluster.shutdown()
        os.environ.pop("RAY_ADDRESS", None)
