# CUDA as a Deep Learning AMI lays it out, for setup.sh's check and svox2 steps (sourced; a test sources
# it too). Needs $PY (the AMI's interpreter) and $BASE (where a made CUDA_HOME goes);
# SKYDECK_SYSTEM_CUDA stands for /usr/local/cuda in a rehearsal of a host that has none.

find_nvcc() {  # the first nvcc of: $CUDA_HOME, PATH, /usr/local/cuda, the PyTorch environment's pip wheels
  local found site
  if [ -n "${CUDA_HOME:-}" ] && [ -x "$CUDA_HOME/bin/nvcc" ]; then echo "$CUDA_HOME/bin/nvcc"; return 0; fi
  if found=$(command -v nvcc 2>/dev/null); then echo "$found"; return 0; fi
  local system="${SKYDECK_SYSTEM_CUDA:-/usr/local/cuda}"  # another root only in a rehearsal
  if [ -x "$system/bin/nvcc" ]; then echo "$system/bin/nvcc"; return 0; fi
  # recent DLAMIs carry no /usr/local/cuda: nvcc comes from NVIDIA's wheels, in nvidia/cu13/bin
  site=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' 2>/dev/null) || return 1
  for found in "$site"/nvidia/cu*/bin/nvcc; do
    [ -x "$found" ] && { echo "$found"; return 0; }
  done
  return 1
}

cuda_home() {  # cuda_home NVCC: a CUDA_HOME that torch's extension builder can compile and link with
  local nvcc="$1" top entry
  top=$(cd "$(dirname "$nvcc")/.." && pwd)
  if [ -d "$top/lib64" ]; then echo "$top"; return 0; fi
  # NVIDIA's wheels keep lib, not lib64, and nvcc.profile finds its TOP from where nvcc is called: a bin
  # linked as a whole resolves back to the wheel's folder (and -lcudadevrt is not found), so bin is
  # linked file by file, with lib64 beside it
  local home="$BASE/cuda"
  rm -rf "$home"
  mkdir -p "$home/bin" "$home/lib64"
  for entry in "$top"/*; do
    case "$(basename "$entry")" in
      bin) for f in "$entry"/*; do ln -s "$f" "$home/bin/$(basename "$f")"; done ;;
      lib)
        for f in "$entry"/*; do ln -s "$f" "$home/lib64/$(basename "$f")"; done
        # the wheels carry the runtime's versioned names only (libcudart.so.13): the linker's -lcudart wants
        # the unversioned name a toolkit install adds beside it
        for f in "$entry"/lib*.so.*; do
          [ -e "$f" ] || continue
          dev="$(basename "$f")"; dev="${dev%%.so.*}.so"
          [ -e "$home/lib64/$dev" ] || ln -s "$f" "$home/lib64/$dev"
        done
        ln -s "$entry" "$home/lib" ;;
      *) ln -s "$entry" "$home/$(basename "$entry")" ;;
    esac
  done
  echo "$home"
}

cuda_arch() {  # the GPU's compute capability for TORCH_CUDA_ARCH_LIST (SKYDECK_CUDA_ARCH in a rehearsal)
  [ -n "${SKYDECK_CUDA_ARCH:-}" ] && { echo "$SKYDECK_CUDA_ARCH"; return 0; }
  "$PY" -c 'import torch; print("%d.%d" % torch.cuda.get_device_capability())'
}
