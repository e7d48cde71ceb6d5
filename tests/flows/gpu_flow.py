"""A step that does real work on a GPU through dask-cuda: @resources(gpu=1)."""
from daskflow import FlowSpec, current, resources, step


def gpu_matmul(n: int) -> dict:
    try:
        import cupy as xp
        library = "cupy"
    except ImportError:
        import torch
        a = torch.ones((n, n), device="cuda")
        return {"library": "torch", "trace": float((a @ a).trace().item()),
                "device": torch.cuda.get_device_name(0)}
    a = xp.ones((n, n), dtype=xp.float32)
    return {"library": library, "trace": float(xp.trace(a @ a)),
            "device": xp.cuda.runtime.getDeviceProperties(0)["name"].decode()}


class GPUFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.train)

    @resources(gpu=1, memory="4GiB")
    @step
    def train(self):
        self.result = current.client.submit(gpu_matmul, 1024).result()
        print(f"computed on {self.result['device']} with {self.result['library']}")
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    GPUFlow()
