"""What an ECS/Fargate cluster exposes to the network, and a security group that allows no more.

dask-cloudprovider's own security group opens the scheduler's ports 8786-8787 to
``0.0.0.0/0`` and ``::/0``. Unless ``daskflow.cluster.aws.security-groups`` names
groups of the user's, daskflow creates one per cluster instead, named as
dask-cloudprovider's (``dask-<cluster>-security-group``, so teardown deletes it
like the rest), that lets in:

- the scheduler's ports 8786 (Dask) and 8787 (dashboard) from where the driver
  reaches them, and nothing wider: the driver's own address (``/32``) when tasks
  get public IPs (``use-private-ip: false``), the VPC's CIDR blocks when the
  driver reaches them by private IP (``use-private-ip: true``, daskflow runs in the
  VPC or one peered with it); ``driver-cidr`` overrides either;
- any TCP port from the group itself: workers to the scheduler and to each other.

The driver's address is the local address of the route to the AWS API when that is
a public one, else the address AWS sees (``checkip.amazonaws.com``, bounded by
``api-timeout``); when neither can be told, the start is refused with what to set.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any
from urllib.parse import urlparse

from ...exceptions import ConfigurationError

#: the scheduler's ports: Dask's comm, the dashboard
SCHEDULER_PORTS = (8786, 8787)
#: where the address AWS sees for this machine can be asked (AWS's own service)
CHECKIP_URL = "https://checkip.amazonaws.com"


class DriverAddressError(ConfigurationError):
    """The driver's address, which the security group lets in, could not be told."""

    headline = "AWS security group"


def exposure(backend: Any) -> dict[str, Any]:
    """What a cluster of ``backend`` (aws-fargate, aws-ecs) exposes; nothing is contacted.

    ``ports``, ``sources`` (CIDRs, or words where they are found at start), ``public_ip``,
    ``tls``, and ``security_groups`` when they are the user's own.
    """
    from .. import security
    public = not backend.option("use-private-ip")
    # an existing scheduler (scheduler-address) has its own security
    tls = security.enabled() and not backend.option("scheduler-address")
    found: dict[str, Any] = {"ports": list(SCHEDULER_PORTS), "public_ip": public, "tls": tls}
    if backend.option("security-groups"):
        found["security_groups"] = list(backend.option("security-groups"))
        found["sources"] = ["as your security groups allow (daskflow changes nothing)"]
    elif backend.launch_type == "ec2":
        found["sources"] = ["0.0.0.0/0 and ::/0 (dask-cloudprovider's default group; set "
                            "daskflow.cluster.aws.security-groups)"]
    elif backend.option("driver-cidr"):
        found["sources"] = [str(backend.option("driver-cidr"))]
    else:
        found["sources"] = ["this machine's address/32 (found at start)" if public
                            else "the VPC's CIDR blocks (found at start)"]
    return found


def describe_exposure(found: dict[str, Any]) -> str:
    """``exposes ports 8786-8787 to 203.0.113.7/32, public IP, TLS`` for ``show``.

    >>> describe_exposure({"ports": [8786, 8787], "sources": ["10.0.0.0/16"],
    ...                    "public_ip": False, "tls": True})
    'exposes ports 8786-8787 (scheduler, dashboard) to 10.0.0.0/16; no public IP; TLS on'
    """
    ports = f"{found['ports'][0]}-{found['ports'][-1]}"
    groups = f" (security groups {', '.join(found['security_groups'])})" \
        if found.get("security_groups") else ""
    return (f"exposes ports {ports} (scheduler, dashboard) to {', '.join(found['sources'])}"
            f"{groups}; {'public IP' if found['public_ip'] else 'no public IP'}; "
            f"TLS {'on' if found['tls'] else 'off'}")


def create_security_group(backend: Any, name: str, kwargs: dict[str, Any]) -> str:
    """Make cluster ``name``'s security group (see the module), return its id.

    ``kwargs`` are the cluster's (``vpc``, ``subnets``, ``tags``): the group goes into
    the VPC the tasks will run in.
    """
    ec2 = backend.client("ec2")
    vpc = _vpc(ec2, kwargs)
    sources = _sources(backend, ec2, vpc)
    tags = [{"Key": k, "Value": str(v)} for k, v in (kwargs.get("tags") or {}).items() if k and v]
    group = ec2.create_security_group(
        GroupName=f"dask-{name}-security-group", VpcId=vpc,
        Description=f"daskflow cluster {name}: scheduler ports from the driver only",
        TagSpecifications=[{"ResourceType": "security-group", "Tags": tags}])["GroupId"]
    ranges = [{"CidrIp": c, "Description": "the daskflow driver"} for c in sources
              if ipaddress.ip_network(c).version == 4]
    ranges6 = [{"CidrIpv6": c, "Description": "the daskflow driver"} for c in sources
               if ipaddress.ip_network(c).version == 6]
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": SCHEDULER_PORTS[0], "ToPort": SCHEDULER_PORTS[-1],
         "IpRanges": ranges, "Ipv6Ranges": ranges6},
        {"IpProtocol": "tcp", "FromPort": 0, "ToPort": 65535,
         "UserIdGroupPairs": [{"GroupId": group, "Description": "the cluster's own tasks"}]},
    ])
    return group


def _vpc(ec2: Any, kwargs: dict[str, Any]) -> str:
    if kwargs.get("vpc") and kwargs["vpc"] != "default":
        return str(kwargs["vpc"])
    subnets = kwargs.get("subnets")
    if subnets:
        subnets = [subnets] if isinstance(subnets, str) else list(subnets)
        return ec2.describe_subnets(SubnetIds=subnets[:1])["Subnets"][0]["VpcId"]
    found = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]
    if not found:
        raise ConfigurationError("This AWS account has no default VPC in the region: set "
                                 "daskflow.cluster.aws.vpc (and subnets).")
    return found[0]["VpcId"]


def _sources(backend: Any, ec2: Any, vpc: str) -> list[str]:
    """The CIDRs the scheduler's ports are opened to."""
    configured = backend.option("driver-cidr")
    if configured:
        items = [configured] if isinstance(configured, str) else list(configured)
        try:
            return [str(ipaddress.ip_network(c, strict=False)) for c in items]
        except ValueError as exc:
            raise DriverAddressError(f"daskflow.cluster.aws.driver-cidr {configured!r} is "
                                     f"not a CIDR ({exc}): e.g. 203.0.113.7/32.") from None
    if backend.option("use-private-ip"):
        [described] = ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"]
        blocks = [a["CidrBlock"] for a in described.get("CidrBlockAssociationSet", [])
                  if a.get("CidrBlockState", {}).get("State", "associated") == "associated"]
        return blocks or [described["CidrBlock"]]
    return [_host_cidr(driver_address(ec2.meta.endpoint_url, backend.option("api-timeout")))]


def _host_cidr(address: str) -> str:
    ip = ipaddress.ip_address(address)
    return f"{ip}/{ip.max_prefixlen}"


def route_address(endpoint_url: str) -> str:
    """This machine's local address on the route to ``endpoint_url`` (no packet is sent).

    >>> route_address("http://127.0.0.1:5000")
    '127.0.0.1'
    """
    parsed = urlparse(endpoint_url)
    host, port = parsed.hostname or "", parsed.port or 443
    family, _, _, _, address = socket.getaddrinfo(host, port, proto=socket.IPPROTO_UDP)[0]
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        probe.connect(address[:2])
        return probe.getsockname()[0]


def driver_address(endpoint_url: str, timeout: Any) -> str:
    """The address the cluster sees the driver coming from (see the module)."""
    from dask.utils import parse_timedelta
    try:
        local = ipaddress.ip_address(route_address(endpoint_url))
    except OSError as exc:
        raise DriverAddressError(
            f"Could not find this machine's route to {endpoint_url} ({exc}): set "
            f"daskflow.cluster.aws.driver-cidr to the address the cluster sees.") from None
    if local.is_global or local.is_loopback:  # loopback: an API emulator on this machine
        return str(local)
    import urllib.request
    try:
        with urllib.request.urlopen(CHECKIP_URL, timeout=parse_timedelta(timeout)) as answer:
            return str(ipaddress.ip_address(answer.read().decode().strip()))
    except (OSError, ValueError) as exc:
        raise DriverAddressError(
            f"This machine's address {local} is private and {CHECKIP_URL} did not say which "
            f"public address AWS sees ({type(exc).__name__}), so the scheduler's ports "
            f"cannot be opened to it alone. Set daskflow.cluster.aws.driver-cidr (e.g. "
            f"your NAT's 203.0.113.7/32), or run daskflow in the VPC with "
            f"daskflow.cluster.aws.use-private-ip: true.") from None
