"""Scale-in protection for a fleet instance while it runs a job.

The fleet's group scales on queued plus running jobs; when the backlog shrinks it may pick any
instance to terminate, one halfway through a training included. Each executor marks its own instance
protected from scale-in when it claims a job and clears the mark when the job has ended, so the
group only ever removes idle instances. Fleet hosts turn this on with SKYDECK_SCALE_IN_PROTECTION=1
(their user data does); nowhere else is there a group to ask.

A failure here is logged and never stops a job: at worst the instance is as exposed as before.
"""

from __future__ import annotations

import logging
import os
import urllib.request
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("skydeck.executor.scale_in")
IMDS = "http://169.254.169.254"


def metadata_base() -> str:
    """Where the metadata service answers: botocore's own setting (a rehearsed host's local IMDS), or EC2's."""
    return os.environ.get("AWS_EC2_METADATA_SERVICE_ENDPOINT", IMDS).rstrip("/") + "/latest"


def instance_id_from_metadata(timeout_s: float = 2.0) -> str | None:
    """This instance's id from the instance metadata service (IMDSv2, which the fleet requires)."""
    base = metadata_base()
    try:
        token_request = urllib.request.Request(
            f"{base}/api/token", method="PUT", headers={"X-aws-ec2-metadata-token-ttl-seconds": "300"}
        )
        with urllib.request.urlopen(token_request, timeout=timeout_s) as resp:
            token = resp.read().decode()
        id_request = urllib.request.Request(
            f"{base}/meta-data/instance-id", headers={"X-aws-ec2-metadata-token": token}
        )
        with urllib.request.urlopen(id_request, timeout=timeout_s) as resp:
            return resp.read().decode().strip() or None
    except OSError:
        return None


@dataclass
class ScaleInProtection:
    autoscaling: Any  # a boto3 Auto Scaling client
    instance_id: str
    group: str

    @classmethod
    def from_environment(cls, autoscaling: Any) -> ScaleInProtection | None:
        """On when SKYDECK_SCALE_IN_PROTECTION=1; the instance from SKYDECK_INSTANCE_ID or the metadata
        service, its group from Auto Scaling itself. None (with the reason logged) where either is missing."""
        if os.environ.get("SKYDECK_SCALE_IN_PROTECTION") != "1":
            return None
        instance_id = os.environ.get("SKYDECK_INSTANCE_ID") or instance_id_from_metadata()
        if not instance_id:
            log.warning("scale-in protection is on, but this host's instance id is unknown: left off")
            return None
        try:
            found = autoscaling.describe_auto_scaling_instances(InstanceIds=[instance_id])["AutoScalingInstances"]
        except Exception as exc:  # noqa: BLE001 - protection is a safeguard, not a reason to stop
            log.warning("scale-in protection left off: could not look up instance %s: %s", instance_id, exc)
            return None
        if not found:
            log.warning("scale-in protection left off: instance %s is in no Auto Scaling group", instance_id)
            return None
        protection = cls(autoscaling, instance_id, found[0]["AutoScalingGroupName"])
        # an executor killed while it held a job left the mark set, and nothing runs now: clear it, or
        # the group could never take this instance back
        protection.release()
        return protection

    def hold(self) -> bool:
        return self._set(True)

    def release(self) -> bool:
        return self._set(False)

    def _set(self, protected: bool) -> bool:
        try:
            self.autoscaling.set_instance_protection(
                InstanceIds=[self.instance_id], AutoScalingGroupName=self.group, ProtectedFromScaleIn=protected
            )
            return True
        except Exception as exc:  # noqa: BLE001 - see the module's docstring
            log.warning(
                "could not %s scale-in protection of %s: %s", "set" if protected else "clear", self.instance_id, exc
            )
            return False
