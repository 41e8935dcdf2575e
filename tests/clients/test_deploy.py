"""The deployment files of deploy/: validated offline, then run as written.

- Every Kubernetes manifest under deploy/k8s is checked against the Kubernetes API schemas
  (PyPI's kubernetes-validate, strict: unknown fields fail) — no cluster needed.
- The manifests agree with each other: Services select the workers' labels and name ports the
  containers have, probes ask the admin port's /readyz and /healthz, every ConfigMap and Secret a
  pod refers to exists with the keys it names.
- The StatefulSet's worker really starts from the ConfigMap's alcove.toml and the environment the
  pod spec gives it (worker id from the pod name, secrets from the Secret): two such workers and a
  local etcd form a cluster on loopback; the readiness probe's endpoint answers, the admin API
  refuses requests without the Secret's token, and an object written through one worker is read
  through the other. Only what a laptop cannot provide is replaced: addresses (loopback ports
  instead of pod DNS names) and the volume paths.
- The systemd unit's ExecStart starts a worker with its own flags.

No test here uses the `bucket` fixtures, so they run once, in the first pass of scripts/test.sh.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import kubernetes_validate
import pytest
import tomllib
import yaml

from alcove_helpers import Worker, free_ports, patched_env, wait_until
from remotes import terminate

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
# The oldest Kubernetes release still maintained when these manifests were written.
K8S_VERSION = "1.32"


def manifests() -> list[tuple[Path, dict]]:
    docs = []
    for path in sorted(K8S.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.append((path, doc))
    return docs


def find(kind: str, name: str) -> dict:
    for _, doc in manifests():
        if doc["kind"] == kind and doc["metadata"]["name"] == name:
            return doc
    raise AssertionError(f"no {kind} named {name!r} in deploy/k8s")


def workloads() -> list[dict]:
    """The workers' StatefulSet and DaemonSet (not etcd's)."""
    return [doc for _, doc in manifests()
            if doc["kind"] in ("StatefulSet", "DaemonSet") and doc["metadata"]["labels"]["app.kubernetes.io/name"] == "alcove"]


def test_every_manifest_matches_the_kubernetes_schemas():
    docs = manifests()
    kinds = {doc["kind"] for _, doc in docs}
    assert {"StatefulSet", "DaemonSet", "Service", "ConfigMap", "Secret", "PodDisruptionBudget"} <= kinds, kinds
    for path, doc in docs:
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            raise AssertionError(f"{path.relative_to(REPO)}: {doc['kind']}/{doc['metadata']['name']}: {e}") from e


def test_the_manifests_refer_to_each_other_correctly():
    assert len(workloads()) == 2
    for workload in workloads():
        pod = workload["spec"]["template"]
        labels = pod["metadata"]["labels"]
        assert workload["spec"]["selector"]["matchLabels"].items() <= labels.items()
        for volume in pod["spec"].get("volumes", []):
            if "configMap" in volume:
                find("ConfigMap", volume["configMap"]["name"])
        for container in pod["spec"]["containers"]:
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    secret = find("Secret", ref["name"])
                    assert ref["key"] in secret["stringData"], (ref, secret["stringData"].keys())
            ports = {p.get("name"): p["containerPort"] for p in container["ports"]}
            for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
                get = container[probe]["httpGet"]
                assert get["path"] == path
                assert ports.get(get["port"], get["port"]) == 30000, f"{probe} must ask the admin port"
            mounts = {m["name"] for m in container["volumeMounts"]}
            claimed = {v["name"] for v in pod["spec"].get("volumes", [])}
            claimed |= {c["metadata"]["name"] for c in workload["spec"].get("volumeClaimTemplates", [])}
            assert mounts <= claimed, mounts - claimed
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True

    statefulset = find("StatefulSet", "alcove")
    worker_labels = statefulset["spec"]["template"]["metadata"]["labels"]
    container_ports = {p["name"] for p in statefulset["spec"]["template"]["spec"]["containers"][0]["ports"]}
    for name in ("alcove", "alcove-peers"):
        service = find("Service", name)
        assert service["spec"]["selector"].items() <= worker_labels.items(), name
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in container_ports, (name, port)
    assert find("Service", "alcove")["spec"]["type"] == "LoadBalancer"
    assert find("Service", "alcove-peers")["spec"]["clusterIP"] == "None"
    assert statefulset["spec"]["serviceName"] == "alcove-peers"
    pdb = find("PodDisruptionBudget", "alcove")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= worker_labels.items()
    assert find("DaemonSet", "alcove-node")["spec"]["template"]["spec"]["hostNetwork"] is True

    # The worker's etcd endpoints name the etcd StatefulSet's members through its headless Service.
    config = tomllib.loads(find("ConfigMap", "alcove-config")["data"]["alcove.toml"])
    etcd = find("StatefulSet", "alcove-etcd")
    expected = [f"http://{etcd['metadata']['name']}-{i}.{etcd['spec']['serviceName']}:2379"
                for i in range(etcd["spec"]["replicas"])]
    assert config["cluster"]["etcd"]["endpoints"] == expected
    # SIGTERM's drain and grace for in-flight requests fit in the pod's.
    drain = float(config["s3"]["shutdown_drain"].removesuffix("s"))
    assert drain + config["s3"]["shutdown_grace"] < \
        statefulset["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]


def pod_env(workload: dict, fields: dict[str, str]) -> dict[str, str]:
    """The container's environment as the kubelet would build it: field references from `fields`,
    secrets from the Secret's stringData, and $(VAR) references to earlier variables expanded."""
    env: dict[str, str] = {}
    for item in workload["spec"]["template"]["spec"]["containers"][0]["env"]:
        source = item.get("valueFrom", {})
        if "fieldRef" in source:
            value = fields[source["fieldRef"]["fieldPath"]]
        elif "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            value = find("Secret", ref["name"])["stringData"][ref["key"]]
        else:
            value = re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), item["value"])
        env[item["name"]] = value
    return env


class Etcd:
    def __init__(self, base: Path):
        self.client_port, self.peer_port = free_ports(2)
        self.log = open(base / "etcd.log", "wb")
        self.proc = subprocess.Popen(
            ["etcd", "--name", "test", "--data-dir", str(base / "etcd"),
             "--listen-client-urls", f"http://127.0.0.1:{self.client_port}",
             "--advertise-client-urls", f"http://127.0.0.1:{self.client_port}",
             "--listen-peer-urls", f"http://127.0.0.1:{self.peer_port}",
             "--initial-advertise-peer-urls", f"http://127.0.0.1:{self.peer_port}",
             "--initial-cluster", f"test=http://127.0.0.1:{self.peer_port}"],
            stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL)
        if not wait_until(self.healthy, timeout=30, interval=0.2):
            self.stop()
            raise RuntimeError(f"etcd did not become healthy: {(base / 'etcd.log').read_text()[-2000:]}")

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.endpoint}/health", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def stop(self):
        terminate(self.proc)
        self.log.close()


def http_status(url: str, token: str | None = None) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0  # not listening (yet)


@pytest.mark.skipif(shutil.which("etcd") is None, reason="etcd-server is not installed")
def test_the_statefulset_worker_runs_from_the_configmap_and_secret(alcove_bin, tmp_path):
    statefulset = find("StatefulSet", "alcove")
    config_text = find("ConfigMap", "alcove-config")["data"]["alcove.toml"]
    etcd = Etcd(tmp_path)
    workers = []
    try:
        # The pods' volume paths and etcd's DNS names, as this machine has them.
        local = config_text.replace('path = "/cache"', f'path = "{tmp_path}/cache-@POD@"')
        local = re.sub(r"endpoints = \[[^\]]*\]", f'endpoints = ["{etcd.endpoint}"]', local)
        assert local != config_text
        for pod in ("alcove-0", "alcove-1"):
            env = pod_env(statefulset, {"metadata.name": pod, "metadata.namespace": "default"})
            assert env["ALCOVE_CLUSTER_ID"] == pod
            assert env["ALCOVE_CLUSTER_ADVERTISE_PEER"] == f"{pod}.alcove-peers.default.svc:29999"
            worker = Worker(alcove_bin, tmp_path / pod, config=local.replace("@POD@", pod))
            s3, admin, peer = free_ports(3)
            # Loopback ports stand in for the pod's DNS name and fixed ports.
            env.update(ALCOVE_CLUSTER_ADVERTISE_PEER=f"127.0.0.1:{peer}",
                       ALCOVE_CLUSTER_ADVERTISE_S3=f"http://127.0.0.1:{s3}")
            worker.s3_port, worker.admin_port, worker.peer_port = s3, admin, peer
            with patched_env(env):
                worker.start(keep_ports=True)
            workers.append(worker)
        token = find("Secret", "alcove-secrets")["stringData"]["admin-token"]
        first, second = workers
        assert http_status(f"{first.admin}/readyz") == 200
        assert http_status(f"{first.admin}/healthz") == 200
        assert http_status(f"{first.admin}/api/v1/mounts") == 401
        assert http_status(f"{first.admin}/api/v1/mounts", token) == 200

        def both_members() -> bool:
            status = first.alcove("status", "--admin", first.admin, "--admin-token", token, "--json").stdout
            return '"alcove-0"' in status and '"alcove-1"' in status
        assert wait_until(both_members, timeout=20, interval=0.2), "the two workers did not meet in etcd"

        (first.root / "photos").mkdir()
        (second.root / "photos").mkdir()
        s3_first, s3_second = first.client(), second.client()
        for i in range(8):
            s3_first.put_object(Bucket="photos", Key=f"k{i}", Body=f"body {i}".encode())
        for i in range(8):
            assert s3_second.get_object(Bucket="photos", Key=f"k{i}")["Body"].read() == f"body {i}".encode()
    finally:
        for worker in workers:
            worker.stop()
        etcd.stop()


def test_the_systemd_unit_starts_a_worker(alcove_bin, tmp_path):
    unit = (REPO / "deploy" / "systemd" / "alcove.service").read_text()
    exec_start = re.search(r"^ExecStart=(.+)$", unit, re.M).group(1)
    argv = shlex.split(exec_start)
    assert argv[0] == "/usr/local/bin/alcove" and argv[1] == "serve"
    config = tmp_path / "alcove.toml"
    config.write_text("")
    s3, admin, peer = free_ports(3)
    # The unit's own flags, with this machine's paths and ports.
    argv = [alcove_bin] + [
        {"/etc/alcove/alcove.toml": str(config), "/var/lib/alcove/data": str(tmp_path / "data")}.get(a, a)
        for a in argv[1:]
    ] + ["--s3-addr", f"127.0.0.1:{s3}", "--admin-addr", f"127.0.0.1:{admin}", "--peer-addr", f"127.0.0.1:{peer}"]
    (tmp_path / "data").mkdir()
    with open(tmp_path / "log", "wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: http_status(f"http://127.0.0.1:{admin}/readyz") == 200, timeout=30, interval=0.1), \
            (tmp_path / "log").read_text()[-2000:]
    finally:
        terminate(proc)
    assert re.search(r"^TimeoutStopSec=(\d+)$", unit, re.M), "the unit must bound the stop"
