"""num_parallel: a gang of nodes that meet at node 0 over plain sockets (as
torch.distributed's rendezvous does), then a join of all of them."""
import os
import socket
import time

from daskflow import FlowSpec, Parameter, current, parallel, resources, retry, step

BACKEND = os.environ.get("GANG_BACKEND", "local")  # the gang's cluster: local or slurm


def rendezvous(index, nodes, host, port):
    """Node 0 listens; the others connect and send their index; node 0 answers the sum."""
    if index == 0:
        with socket.create_server(("", port)) as server:
            server.settimeout(60)
            peers, total = [], 0
            while len(peers) < nodes - 1:
                conn, _ = server.accept()
                total += int(conn.recv(64).decode())
                peers.append(conn)
            for conn in peers:
                conn.sendall(str(total).encode())
                conn.close()
            return total
    deadline = time.time() + 60
    while True:
        try:
            conn = socket.create_connection((host, port), timeout=5)
            break
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.1)
    with conn:
        conn.sendall(str(index).encode())
        return int(conn.recv(64).decode())


class GangFlow(FlowSpec):
    nodes = Parameter("nodes", default=3)
    fail_once = Parameter("fail_once", default=-1, help="this node fails the first round")

    @step
    def start(self):
        self.next(self.train, num_parallel=self.nodes)

    @retry(times=1)
    @parallel
    @resources(backend=BACKEND, memory="400MiB")
    @step
    def train(self):
        p = current.parallel
        if p.node_index == self.fail_once and current.retry_count == 0:
            raise RuntimeError(f"node {p.node_index} fails the first round")
        self.round = current.retry_count
        self.place = (p.node_index, p.num_nodes, p.control_task_id)
        self.total = rendezvous(p.node_index, p.num_nodes, p.main_ip, p.main_port)
        self.env_index = os.environ["MF_PARALLEL_NODE_INDEX"]
        self.worker = current.client.scheduler.address if p.node_index == 0 else None
        self.next(self.join)

    @step
    def join(self, inputs):
        self.places = sorted(i.place for i in inputs)
        self.totals = sorted({i.total for i in inputs})
        self.env_indices = sorted(i.env_index for i in inputs)
        self.rounds = sorted(i.round for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    GangFlow()
