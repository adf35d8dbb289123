"""AWS's public SSM parameters that skydeck's templates resolve, answered by the local cloud.

The fleet template takes its AMI from the public parameter of the current Deep Learning AMI for
PyTorch; moto knows only the Amazon Linux ones. Here the DLAMI's parameter answers with one of
moto's own images (a 'Deep Learning AMI Amazon Linux' whose root device is /dev/xvda, as the real
one's is), so the template deploys unchanged and its instances launch.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from moto.ssm import models as ssm_models

DLAMI_PYTORCH_PARAMETER = (
    "/aws/service/deeplearning/ami/x86_64/oss-nvidia-driver-gpu-pytorch-2.13-amazon-linux-2023/latest/ami-id"
)
LOCAL_DLAMI_IMAGE = "ami-999844e0"  # in moto's image list: 'Deep Learning AMI Amazon Linux', root /dev/xvda
PUBLIC = {DLAMI_PYTORCH_PARAMETER: LOCAL_DLAMI_IMAGE}


def install() -> None:
    if getattr(ssm_models.ParameterDict, "_skydeck_public", False):
        return
    original = ssm_models.ParameterDict._check_loading_status

    def check_loading_status(self: Any, key: str) -> None:
        original(self, key)
        # the dict's own methods: the class's __getitem__/__contains__ would come back here
        if key in PUBLIC and not dict.__contains__(self, key):
            defaultdict.__getitem__(self, key).append(
                ssm_models.Parameter(  # type: ignore[abstract]  # moto builds its own public parameters so
                    account_id=self.account_id,
                    name=key,
                    value=PUBLIC[key],
                    parameter_type="String",
                    description=None,
                    allowed_pattern=None,
                    keyid=None,
                    last_modified_date=0,  # type: ignore[arg-type]  # a number, as in moto's own public list
                    version=1,
                    data_type="aws:ec2:image",
                )
            )

    ssm_models.ParameterDict._check_loading_status = check_loading_status  # type: ignore[method-assign]  # moto's class, patched in place
    ssm_models.ParameterDict._skydeck_public = True  # type: ignore[attr-defined]  # moto's class, patched in place
