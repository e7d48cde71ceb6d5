"""What an ECS/Fargate cluster exposes (daskflow.clusters.aws.network), against moto's server.

The security group is created for real in moto and read back with
describe_security_groups: its ingress rules as AWS would hold them.
"""

from __future__ import annotations

import json
import uuid

import pytest

pytest.importorskip("dask_cloudprovider.aws")
boto3 = pytest.importorskip("boto3")

from daskflow.clusters import ResourceRequest, get_backend
from daskflow.clusters.aws.network import create_security_group, route_address

from .test_aws import fargate, moto_leftovers  # noqa: F401  (fargate: a fixture)


def ingress(group_id: str) -> list[dict]:
    [group] = boto3.client("ec2").describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
    return group["IpPermissions"]


def opened_to(rules: list[dict]) -> list[str]:
    return [r["CidrIp"] for rule in rules for r in rule.get("IpRanges", [])] + \
        [r["CidrIpv6"] for rule in rules for r in rule.get("Ipv6Ranges", [])]


def default_vpc_cidr() -> str:
    [vpc] = boto3.client("ec2").describe_vpcs(
        Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]
    return vpc["CidrBlock"]


@pytest.mark.aws
@pytest.mark.parametrize("options, expected", [
    ({}, lambda: ["127.0.0.1/32"]),     # public IPs: the driver's address (moto's route: lo)
    ({"use_private_ip": True}, lambda: [default_vpc_cidr()]),
    ({"driver_cidr": "203.0.113.7/32"}, lambda: ["203.0.113.7/32"]),
], ids=["public-ip", "private-ip", "driver-cidr"])
def test_the_security_group_opens_the_scheduler_to_the_driver_only(aws, options, expected):
    backend = get_backend("aws-fargate", **options)
    name = f"daskflow-sg-{uuid.uuid4().hex[:8]}"
    group = create_security_group(backend, name, {"tags": {"daskflow-cluster": name}})
    try:
        rules = ingress(group)
        [ports] = [r for r in rules if r.get("IpRanges") or r.get("Ipv6Ranges")]
        assert (ports["IpProtocol"], ports["FromPort"], ports["ToPort"]) == ("tcp", 8786, 8787)
        assert opened_to(rules) == expected()
        assert "0.0.0.0/0" not in json.dumps(rules) and "::/0" not in json.dumps(rules)
        [inside] = [r for r in rules if r.get("UserIdGroupPairs")]
        assert [p["GroupId"] for p in inside["UserIdGroupPairs"]] == [group]
        assert (inside["FromPort"], inside["ToPort"]) == (0, 65535)
    finally:
        boto3.client("ec2").delete_security_group(GroupId=group)


@pytest.mark.aws
def test_a_fargate_cluster_runs_in_its_own_group_deleted_at_teardown(fargate):
    from distributed import Client
    with fargate.open(ResourceRequest()) as cluster, Client(cluster) as client:
        assert client.submit(sum, [1, 2]).result() == 3
        name = fargate.names[-1]
        [group] = boto3.client("ec2").describe_security_groups(Filters=[
            {"Name": "group-name", "Values": [f"dask-{name}-security-group"]}])["SecurityGroups"]
        assert cluster._security_groups == [group["GroupId"]]
        assert opened_to(group["IpPermissions"]) == [default_vpc_cidr()]  # use_private_ip
        assert {"Key": "daskflow-cluster", "Value": name} in group["Tags"]
    assert moto_leftovers(name) == []  # the group too


@pytest.mark.fast
def test_show_says_what_is_exposed():
    fargate = get_backend("aws-fargate").describe(ResourceRequest())
    assert fargate.endswith("exposes ports 8786-8787 (scheduler, dashboard) to this machine's "
                            "address/32 (found at start); public IP; TLS on")
    private = get_backend("aws-fargate", use_private_ip=True, security_groups=["sg-1"])
    assert private.describe(ResourceRequest()).endswith(
        "as your security groups allow (daskflow changes nothing) (security groups sg-1); "
        "no public IP; TLS on")
    assert "to 0.0.0.0/0 and ::/0" in get_backend("aws-ec2").describe(ResourceRequest())


@pytest.mark.fast
def test_the_route_to_a_local_endpoint_is_loopback():
    assert route_address("http://127.0.0.1:5000") == "127.0.0.1"


def test_show_as_json_says_what_each_aws_step_exposes(tmp_path):
    import subprocess
    import sys
    from pathlib import Path
    example = Path(__file__).parents[2] / "examples" / "mixed_backends.py"
    result = subprocess.run([sys.executable, str(example), "show", "--format", "json"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    steps = json.loads(result.stdout)["steps"]
    assert steps["start"]["runs_on"] is None and steps["simulate"]["runs_on"]["exposure"] is None
    assert steps["score"]["runs_on"]["exposure"] == {
        "ports": [8786, 8787], "public_ip": True, "tls": True,
        "sources": ["this machine's address/32 (found at start)"]}
    assert steps["end"]["runs_on"]["backend"] == "aws-ec2"
    assert not (tmp_path / ".daskflow").exists()
