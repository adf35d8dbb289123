"""A fleet host unpacks the original's dataset archives at boot: a bad member is skipped and named, and
the rest of the archive still arrives (it used to stop the whole unpack, and so the host's boot)."""

from __future__ import annotations

import io
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from gpu_executor.host.datasets import unpack


def _zip(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("nerf_synthetic/drums/transforms_train.json", "{}")
        zf.writestr("../outside.txt", "escaped")
        link = zipfile.ZipInfo("nerf_synthetic/drums/link")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")


def _tar(path: Path) -> None:
    with tarfile.open(path, "w:gz") as tf:
        for name, body in (("TanksAndTempleBG/Truck/intrinsics.txt", b"1"), ("../outside.txt", b"escaped")):
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tf.addfile(info, io.BytesIO(body))
        link = tarfile.TarInfo("TanksAndTempleBG/Truck/link")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tf.addfile(link)


@pytest.mark.parametrize(
    ("archive", "make", "kept"),
    [
        ("nerf_synthetic.zip", _zip, "nerf_synthetic/drums/transforms_train.json"),
        ("TanksAndTempleBG.tar.gz", _tar, "TanksAndTempleBG/Truck/intrinsics.txt"),
    ],
)
def test_an_unsafe_member_is_skipped_and_named_and_the_rest_unpacks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], archive: str, make, kept: str
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    make(data / archive)
    assert unpack(data) == [archive]
    assert (data / kept).is_file()
    assert not (tmp_path / "outside.txt").exists()
    link = data / Path(kept).parent / "link"
    assert not link.exists() and not link.is_symlink()
    err = capsys.readouterr().err
    assert "skipped '../outside.txt'" in err and "link" in err
