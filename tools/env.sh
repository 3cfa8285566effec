# Source this file to build and run deda against the project-local PyTorch (libtorch) install.
# It is idempotent and only sets variables; tools/setup.sh does the installing.
_deda_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export VIRTUAL_ENV="$_deda_root/.venv"
export PATH="$VIRTUAL_ENV/bin:$PATH"
export LIBTORCH_USE_PYTORCH=1
_deda_torch_lib="$(ls -d "$VIRTUAL_ENV"/lib/python3*/site-packages/torch/lib 2>/dev/null | head -n 1)"
if [ -n "$_deda_torch_lib" ]; then
  export LD_LIBRARY_PATH="$_deda_torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
unset _deda_root _deda_torch_lib
