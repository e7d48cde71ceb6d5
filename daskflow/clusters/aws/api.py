"""The AWS API as the aws backends use it: credentials, region, bounded clients, preflight.

Every call daskflow makes itself is bounded by ``daskflow.cluster.aws.api-timeout``
(one retry); each way AWS can be unusable has its own error that says what to do.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from ..containers import ContainerBackend
from ..errors import BackendUnavailableError, ResourceRequestError
from ..request import MiB, ResourceRequest
from .instances import smallest_fitting
from .sizing import cpu_units, describe_type


class AWSCredentialsError(BackendUnavailableError):
    """No AWS credentials were found, or AWS refused them."""

    headline = "No usable AWS credentials"


class AWSRegionError(BackendUnavailableError):
    """No region is configured, or the region does not offer the service."""

    headline = "AWS region unusable"


class AWSUnreachableError(BackendUnavailableError):
    """The AWS API (or the endpoint configured for it) does not answer."""

    headline = "AWS API unreachable"



class AWSAPI(ContainerBackend):
    """The part of the aws backends that talks to AWS before a cluster starts."""

    name = "aws"
    config_section = "cluster.aws"
    #: None: from daskflow.cluster.aws.launch-type
    pinned_launch_type: ClassVar[str | None] = None

    @property
    def launch_type(self) -> str:
        launch = self.pinned_launch_type or self.option("launch-type")
        if launch not in ("fargate", "ecs", "ec2"):
            from ...exceptions import ConfigurationError
            raise ConfigurationError(
                f"daskflow.cluster.aws.launch-type is {launch!r}: use fargate, ecs or ec2.")
        return launch

    def session(self) -> Any:
        """One botocore session per backend: credentials and endpoint data are read once."""
        if getattr(self, "_session", None) is None:
            import botocore.session
            self._session = botocore.session.get_session()
            self._clients: dict[tuple[str, str], Any] = {}
        return self._session

    def region(self, session: Any) -> str:
        region = self.option("region") or session.get_config_variable("region")
        service = "ec2" if self.launch_type == "ec2" else "ecs"
        if not region:
            raise AWSRegionError(
                "No AWS region is configured: set daskflow.cluster.aws.region, "
                "AWS_DEFAULT_REGION, or a region in your AWS profile.")
        known = {r for partition in session.get_available_partitions()
                 for r in session.get_available_regions(service, partition_name=partition)}
        if region not in known:
            from ...exceptions import did_you_mean
            raise AWSRegionError(
                f"AWS region '{region}' does not offer {service.upper()} (botocore's endpoint "
                f"data).{did_you_mean(region, sorted(known))} Regions with it: "
                f"{', '.join(sorted(known))}. Set daskflow.cluster.aws.region.")
        return region

    def client(self, service: str, session: Any = None, region: str | None = None) -> Any:
        """A botocore client whose every call is bounded by ``api-timeout`` (one retry)."""
        from botocore.config import Config
        from dask.utils import parse_timedelta
        session = session or self.session()
        region = region or self.region(session)
        if (service, region) not in self._clients:  # making a client takes ~0.1 s
            timeout = parse_timedelta(self.option("api-timeout"))
            self._clients[(service, region)] = session.create_client(
                service, region_name=region,
                config=Config(connect_timeout=timeout, read_timeout=timeout,
                              retries={"max_attempts": 2, "mode": "standard"}))
        return self._clients[(service, region)]

    def preflight(self, request: ResourceRequest) -> None:
        """Credentials, region, one API call; for ecs, a container instance that fits."""
        import botocore.exceptions as bx
        session = self.session()
        region = self.region(session)
        if session.get_credentials() is None:
            raise AWSCredentialsError(
                "No AWS credentials were found (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
                "AWS_PROFILE, ~/.aws/credentials, SSO, or an instance role). Run 'aws "
                "configure' or 'aws sso login', or set the environment variables.")
        try:
            if self.launch_type == "ec2":
                self.client("ec2", session, region).describe_regions(RegionNames=[region])
            else:
                ecs = self.client("ecs", session, region)
                ecs.list_clusters(maxResults=1)
                if self.launch_type == "ecs":
                    self._check_container_instances(ecs, request)
        except bx.NoCredentialsError as exc:
            raise AWSCredentialsError(f"No AWS credentials were found: {exc}.") from exc
        except (bx.EndpointConnectionError, bx.ConnectTimeoutError, bx.ReadTimeoutError) as exc:
            raise AWSUnreachableError(
                f"The AWS API in {region} did not answer: {exc}. Check the network (proxy, "
                f"VPC endpoints) and AWS_ENDPOINT_URL; raise daskflow.cluster.aws.api-timeout "
                f"if it is only slow.") from exc
        except bx.ClientError as exc:
            raise self._client_error(exc, region) from exc

    def _client_error(self, exc: Any, region: str) -> Exception:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in ("UnrecognizedClientException", "InvalidClientTokenId", "AuthFailure",
                    "ExpiredToken", "ExpiredTokenException", "SignatureDoesNotMatch",
                    "InvalidSignatureException"):
            return AWSCredentialsError(
                f"AWS refused the credentials ({code}: {error.get('Message', '')}). Refresh "
                f"them ('aws sso login', new keys), or check AWS_PROFILE.")
        if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation"):
            return AWSCredentialsError(
                f"AWS denied daskflow's first call in {region} ({code}: "
                f"{error.get('Message', '')}). The {self.launch_type} backend needs ECS, EC2, "
                f"IAM and CloudWatch Logs permissions (see dask-cloudprovider's docs).")
        if status and int(status) >= 500:
            return AWSRegionError(
                f"The AWS API in region '{region}' failed ({status}: {code or exc}). Is the "
                f"service offered there? Set daskflow.cluster.aws.region.")
        return BackendUnavailableError(f"AWS refused daskflow's first call in {region}: {exc}")

    def _check_container_instances(self, ecs: Any, request: ResourceRequest) -> None:
        cluster = self.option("cluster-arn")
        arns = ecs.list_container_instances(cluster=cluster, status="ACTIVE")
        found = []
        if arns.get("containerInstanceArns"):
            described = ecs.describe_container_instances(
                cluster=cluster, containerInstances=arns["containerInstanceArns"])
            for ci in described.get("containerInstances", []):
                found.append(_registered(ci))
        units = cpu_units(request.cpu)
        mib = math.ceil(self.worker_memory(request) / MiB)
        if any(f["CPU"] >= units and f["MEMORY"] >= mib and f["GPU"] >= request.gpu
               for f in found):
            return
        try:
            would = smallest_fitting(request.cpu, mib + 512, request.gpu,
                                     self.option("instance-families"))
        except Exception:
            would = None
        have = "; ".join(sorted({f"{f['CPU']} CPU units, {f['MEMORY']} MiB, {f['GPU']} GPUs"
                                 for f in found})) or "no ACTIVE container instances"
        raise ResourceRequestError(
            f"No container instance of ECS cluster {cluster} can run a task of {units} CPU "
            f"units, {mib} MiB{f', {request.gpu} GPUs' if request.gpu else ''} (they have: "
            f"{have}). Ask for less, or add container instances of at least "
            f"{would.name + ' (' + describe_type(would) + ')' if would else 'that size'} to "
            f"the cluster.")


def _registered(container_instance: dict[str, Any]) -> dict[str, int]:
    found = {"CPU": 0, "MEMORY": 0, "GPU": 0}
    for resource in container_instance.get("registeredResources", []):
        if resource.get("name") in ("CPU", "MEMORY"):
            found[resource["name"]] = int(resource.get("integerValue", 0))
        elif resource.get("name") == "GPU":
            found["GPU"] = len(resource.get("stringSetValue", []))
    return found

