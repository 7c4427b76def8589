"""Chunks on a Ray cluster: :class:`RayBackend`, the other backend beside
:class:`~oipscope.runs.chunks.LocalBackend`.

Every chunk is one Ray task. A worker gets the model as the bytes of its file
(put in the object store once; never a pickled live model), opens it once per
worker process and keeps it for the next chunks of the same model, runs
:func:`~oipscope.runs.chunks.run_chunk` and returns the part; the driver saves each
part the moment it arrives, in the same folders as a local run, so ``--resume``,
``oipscope report`` and the gallery work the same. A task whose worker dies is
run again by Ray (``max_retries``); since a chunk's OIPs depend only on its maps
and the seed, the retry gives the same OIPs.

Ray is an optional extra: ``pip install 'oipscope[ray]'``.
"""

from __future__ import annotations

import hashlib
import os
import socket
import tempfile
from pathlib import Path
from typing import Callable, Iterator, Sequence

from .chunks import Chunk, run_chunk
from ..config import Execution, OipConfig
from ..model.encoding import InputEncoding
from ..errors import ClusterError, ConfigError
from ..search.results import OipResult
from ..model.subject import Subject

__all__ = ["RayBackend", "LOCAL", "AUTO"]

LOCAL = "local"
"""``--ray local``: start a Ray cluster on this machine for the run."""
AUTO = "auto"
"""``--ray auto``: join the cluster started on this machine with ``ray start --head``."""

_RETRIES = 3  # runs of a chunk after its worker died
_MODELS: dict[str, tuple[str, Subject]] = {}  # per worker process: model digest -> (file, subject)


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ClusterError("--ray needs Ray: pip install 'oipscope[ray]'") from None
    return ray


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """A host:port address must answer before Ray spends a minute trying."""
    host, _, port = address.rpartition(":")
    host = host.removeprefix("ray://")
    if not host or not port.isdigit():
        raise ConfigError(f"--ray must be 'local', 'auto' or HOST:PORT of a Ray cluster's head, got {address!r}")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise ClusterError(f"cannot reach the Ray cluster at {address} ({exc.strerror or exc}); start it with "
                           "`ray start --head` on its head node, or check the address") from None


def _worker_subject(digest: str, model: bytes, suffix: str, encoding: dict, safe_mode: bool,
                    input_size: tuple[int, int] | None = None) -> Subject:
    """The model of a task, opened once per worker process (and input size)."""
    key = digest if input_size is None else f"{digest}@{input_size[0]}x{input_size[1]}"
    if key not in _MODELS:
        from ..model.subject import open_subject

        folder = Path(tempfile.mkdtemp(prefix="oipscope-worker-"))
        path = folder / f"model{suffix}"
        path.write_bytes(model)
        _MODELS[key] = (str(path), open_subject(path, InputEncoding.from_dict(encoding), safe_mode=safe_mode,
                                                input_size=input_size))
    return _MODELS[key][1]


def _chunk_task(digest: str, model: bytes, suffix: str, encoding: dict, safe_mode: bool,
                input_size: tuple[int, int] | None, chunk: Chunk, config: dict, execution: Execution) -> OipResult:
    """One chunk, in a Ray worker."""
    subject = _worker_subject(digest, model, suffix, encoding, safe_mode, input_size)
    return run_chunk(subject, chunk, OipConfig.from_dict(config), execution=execution)


class RayBackend:
    """Runs chunks as Ray tasks, all at once, as many in parallel as the cluster has room for.

    Args:
        address: ``"local"`` (start a cluster on this machine, ``workers`` CPUs),
            ``"auto"`` (the cluster this machine belongs to) or ``HOST:PORT``.
        workers: with ``"local"``: how many chunks run at once (default: the CPU count).
        cpus_per_task: CPUs Ray reserves for a chunk; TensorFlow in the task uses as many threads.
        gpus_per_task: GPUs Ray reserves for a chunk (0: CPU only).
        safe_mode: refuse model files that contain code (``--unsafe-load`` turns it off).

    Raises:
        ClusterError: Ray is not installed, or the cluster cannot be reached or started.
    """

    name = "ray"

    def __init__(self, address: str = LOCAL, *, workers: int | None = None, cpus_per_task: float = 1,
                 gpus_per_task: float = 0, safe_mode: bool = True):
        if workers is not None and workers < 1:
            raise ConfigError(f"--workers must be >= 1, got {workers}")
        if cpus_per_task <= 0 or gpus_per_task < 0:
            raise ConfigError(f"CPUs per task must be > 0 and GPUs per task >= 0, got {cpus_per_task}, {gpus_per_task}")
        ray = _import_ray()
        self.address, self.cpus_per_task, self.gpus_per_task, self.safe_mode = address, cpus_per_task, gpus_per_task, safe_mode
        self._started = False
        if ray.is_initialized():
            return
        env = {"env_vars": {"TF_CPP_MIN_LOG_LEVEL": "3", "OMP_NUM_THREADS": str(max(1, int(cpus_per_task))),
                            "TF_NUM_INTRAOP_THREADS": str(max(1, int(cpus_per_task))),
                            "TF_NUM_INTEROP_THREADS": "1"}}
        try:
            if address == LOCAL:
                ray.init(num_cpus=workers or os.cpu_count(), include_dashboard=False, log_to_driver=False,
                         runtime_env=env)
            else:
                if address != AUTO:
                    _check_reachable(address)
                ray.init(address=address, log_to_driver=False, runtime_env=env)
        except (ClusterError, ConfigError):
            raise
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ClusterError(f"cannot connect to the Ray cluster {address!r}: {exc}; start one with "
                               "`ray start --head`, or use --ray local") from None
        self._started = True

    @property
    def slots(self) -> int:
        """How many chunks the cluster runs at once."""
        resources = _import_ray().cluster_resources()
        by_cpu = int(resources.get("CPU", 1) // self.cpus_per_task)
        by_gpu = int(resources.get("GPU", 0) // self.gpus_per_task) if self.gpus_per_task else by_cpu
        return max(1, min(by_cpu, by_gpu))

    def run(self, subject: Subject, chunks: Sequence[Chunk], config: OipConfig, execution: Execution,
            on_progress: Callable[[int, int], None] | None = None) -> Iterator[tuple[int, OipResult]]:
        """Submit every chunk; yield ``(index, part)`` as each finishes (any order).

        Leaving the loop early (Ctrl-C, an error) cancels the chunks not yet done.
        """
        ray = _import_ray()
        model, suffix = _model_file_bytes(subject)
        digest = hashlib.sha256(model).hexdigest()
        task = ray.remote(_chunk_task).options(num_cpus=self.cpus_per_task, num_gpus=self.gpus_per_task,
                                               max_retries=_RETRIES, retry_exceptions=False)
        shared = (digest, ray.put(model), suffix, subject.encoding.to_dict(), self.safe_mode, subject.input_size)
        pending = {task.remote(*shared, chunk, config.to_dict(), execution): index
                   for index, chunk in enumerate(chunks)}
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    index = pending.pop(ref)
                    try:
                        part = ray.get(ref)
                    except ray.exceptions.RayTaskError as exc:  # the task raised: the cause, not Ray's wrapper
                        raise exc.as_instanceof_cause() from None
                    except ray.exceptions.RayError as exc:
                        raise ClusterError(f"chunk of maps {chunks[index].maps[0]}-{chunks[index].maps[-1]} "
                                           f"failed on the cluster after {_RETRIES} retries: {exc}") from None
                    yield index, part
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)

    def close(self) -> None:
        """Stop the cluster this backend started; leave a joined cluster running."""
        if self._started:
            _import_ray().shutdown()
            self._started = False


def _model_file_bytes(subject: Subject) -> tuple[bytes, str]:
    """The model as the bytes of a file (its own file, or a fresh ``.keras`` save) and its suffix."""
    if subject.path is not None and Path(subject.path).is_file():
        return Path(subject.path).read_bytes(), Path(subject.path).suffix
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.keras"
        subject.model.save(path)
        return path.read_bytes(), ".keras"
