"""Where the SDS-Inf Server baseline runs: EC2 instances (job-scoped or always-on) or local processes."""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backend.core.errors import ConfigError

if TYPE_CHECKING:
    from backend.context import Context


class ServerHost:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    @property
    def out(self) -> dict[str, str]:
        return self.ctx.stacks.outputs("sdsinf")

    def _install_lines(self) -> list[str]:
        """Shell lines that install the run code and its numpy/scipy in /opt/sdsinf on a Server instance."""
        out = self.out
        code = f"s3://{out['CodeBucket']}/{out['CodeKey']}"
        return [
            "python3 -m venv /opt/sdsinf && /opt/sdsinf/bin/pip install --quiet boto3 numpy scipy",
            f"aws s3 cp {shlex.quote(code)} /opt/sdsinf/code.zip",
            "/opt/sdsinf/bin/python -m zipfile -e /opt/sdsinf/code.zip /opt/sdsinf/app",
        ]

    def job_user_data(self, request_uri: str) -> str:
        """The job-scoped Server: install, run one request, power off (the template terminates on shutdown)."""
        out = self.out
        if "ServerLaunchTemplateId" not in out:
            raise ConfigError(
                "the deployed sdsinf stack predates the Server launch template: skydeck stacks deploy sdsinf"
            )
        run_id = request_uri.rstrip("/").split("/")[-2]
        log = f"s3://{out['ServerResourcesBucket']}/logs/{run_id}.log"
        return "\n".join(
            [
                "#!/bin/bash",
                "# skydeck SDS-Inf Server baseline: one run, then this instance terminates itself.",
                "set -uxo pipefail",
                # whatever happens, keep the log (the instance is gone after) and power off
                f"trap 'aws s3 cp /var/log/cloud-init-output.log {shlex.quote(log)} || true; shutdown -h now' EXIT",
                *self._install_lines(),
                "cd /opt/sdsinf/app",
                f"/opt/sdsinf/bin/python -m lambda_src.sdsinf.server_variant --event-s3 {shlex.quote(request_uri)}",
                "",
            ]
        )

    def launch_instance(self, run_id: str, request_uri: str) -> str:
        """Start the Server baseline on EC2 from the stack's launch template; returns the instance id."""
        ec2 = self.ctx.clients.client("ec2")
        resp = ec2.run_instances(
            LaunchTemplate={"LaunchTemplateId": self.out["ServerLaunchTemplateId"], "Version": "$Latest"},
            MinCount=1,
            MaxCount=1,
            UserData=self.job_user_data(request_uri),
            TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "skydeck:sdsinf-run", "Value": run_id}]}],
        )
        return resp["Instances"][0]["InstanceId"]

    @property
    def _service_file(self) -> Path:
        return self.ctx.home.local_dir / "sdsinf-server.json"

    def status(self) -> dict[str, Any]:
        """Where the always-on server runs: a local process (local cloud) or EC2 instances (AWS)."""
        if self.ctx.profile.is_local:
            import os

            try:
                info = json.loads(self._service_file.read_text())
                os.kill(int(info["pid"]), 0)
                return {"running": True, "where": "local process", **info}
            except (OSError, ValueError, KeyError):
                return {"running": False, "where": "local process"}
        ec2 = self.ctx.clients.client("ec2")
        filters = [
            {"Name": "tag:skydeck:sdsinf-server", "Values": [self.ctx.profile.stack_name("sdsinf")]},
            {"Name": "instance-state-name", "Values": ["pending", "running"]},
        ]
        found = [
            i["InstanceId"] for r in ec2.describe_instances(Filters=filters)["Reservations"] for i in r["Instances"]
        ]
        return {"running": bool(found), "where": "EC2", "instances": found}

    def up(self) -> dict[str, Any]:
        status = self.status()
        if status["running"]:
            return status
        out = self.out
        if "ServerRequestsQueueUrl" not in out:
            raise ConfigError("the deployed sdsinf stack has no server-requests queue: skydeck stacks deploy sdsinf")
        queue = out["ServerRequestsQueueUrl"]
        if self.ctx.profile.is_local:
            import os
            import subprocess
            import sys

            log_dir = self.ctx.home.logs_dir / "executor"
            log_dir.mkdir(parents=True, exist_ok=True)
            with open(log_dir / "sdsinf-server-service.log", "ab") as log:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "lambda_src.sdsinf.server_variant", "--serve", queue, "--wait", "2"],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    start_new_session=True,
                    env={**os.environ, **self.ctx.clients.env()},
                )
            self._service_file.write_text(json.dumps({"pid": proc.pid, "queue": queue}))
            return self.status()
        ec2 = self.ctx.clients.client("ec2")
        resp = ec2.run_instances(
            LaunchTemplate={"LaunchTemplateId": out["ServerLaunchTemplateId"], "Version": "$Latest"},
            MinCount=1,
            MaxCount=1,
            UserData=self.service_user_data(queue),
            InstanceInitiatedShutdownBehavior="stop",
            TagSpecifications=[
                {
                    "ResourceType": "instance",
                    "Tags": [{"Key": "skydeck:sdsinf-server", "Value": self.ctx.profile.stack_name("sdsinf")}],
                }
            ],
        )
        return {"running": True, "where": "EC2", "instances": [resp["Instances"][0]["InstanceId"]]}

    def down(self) -> dict[str, Any]:
        status = self.status()
        if not status["running"]:
            return status
        if self.ctx.profile.is_local:
            import os
            import signal

            os.kill(int(status["pid"]), signal.SIGTERM)  # it finishes the run in hand first
            deadline = time.time() + 30
            while time.time() < deadline:
                try:
                    os.kill(int(status["pid"]), 0)
                except OSError:
                    break
                time.sleep(0.1)
            self._service_file.unlink(missing_ok=True)
        else:
            self.ctx.clients.client("ec2").terminate_instances(InstanceIds=status["instances"])
        return {**self.status(), "stopped": True}

    def service_user_data(self, queue_url: str) -> str:
        """The always-on Server: install, then take runs from the queue as a systemd service."""
        return "\n".join(
            [
                "#!/bin/bash",
                "# skydeck SDS-Inf Server baseline, always-on: takes runs from the server-requests queue.",
                "set -euxo pipefail",
                *self._install_lines(),
                "cat > /etc/systemd/system/sdsinf-server.service <<UNIT",
                "[Unit]",
                "Description=skydeck SDS-Inf server (always-on)",
                "[Service]",
                "WorkingDirectory=/opt/sdsinf/app",
                f"ExecStart=/opt/sdsinf/bin/python -m lambda_src.sdsinf.server_variant --serve {queue_url}",
                "Restart=always",
                "[Install]",
                "WantedBy=multi-user.target",
                "UNIT",
                "systemctl daemon-reload && systemctl enable --now sdsinf-server",
                "",
            ]
        )

    def start_local(self, request_uri: str) -> None:
        """The Server baseline on the local cloud: a job-scoped local process reading the same request."""
        import os
        import subprocess
        import sys

        log_dir = self.ctx.home.logs_dir / "executor"
        log_dir.mkdir(parents=True, exist_ok=True)
        with open(log_dir / "sdsinf-server.log", "ab") as log:
            subprocess.Popen(
                [sys.executable, "-m", "lambda_src.sdsinf.server_variant", "--event-s3", request_uri],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
                env={**os.environ, **self.ctx.clients.env()},
            )
