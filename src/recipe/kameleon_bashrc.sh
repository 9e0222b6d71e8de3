# What a Kameleon recipe may count on in every context shell (local, out and in): Kameleon's
# own shells set these up (its contrib/kameleon_bashrc.sh), and the public step libraries call
# the functions. cairn sources this before the recipe's `env:` files, in Kameleon recipes only.
# @CONTEXT@ is replaced by the context's name.
export USER="${USER:-root}"
export HOME="${HOME:-/root}"
export PATH="/usr/bin:/usr/sbin:/bin:/sbin:$PATH"
export LC_ALL="${LC_ALL:-POSIX}"
export DEBIAN_FRONTEND=noninteractive
export KAMELEON_CONTEXT_NAME="@CONTEXT@_context"

# fail MESSAGE...: says why on stderr and returns non-zero (recipes write `... || fail "why"`).
fail() {
    echo "$@" >&2
    return 1
}

# __download URL FILE: fetches URL with whatever the shell has (curl, wget, python).
__download() {
    echo "Downloading: $1..."
    if command -v curl >/dev/null 2>&1; then
        curl -# -L --retry 999 --retry-max-time 0 "$1" -o "$2" 2>&1
    elif command -v wget >/dev/null 2>&1; then
        wget --retry-connrefused --progress=bar:force "$1" -O "$2" 2>&1
    elif command -v python3 >/dev/null 2>&1 || command -v python >/dev/null 2>&1; then
        "$(command -v python3 || command -v python)" - "$1" "$2" <<'PY'
import sys
try:
    from urllib.request import urlretrieve
except ImportError:
    from urllib import urlretrieve
urlretrieve(sys.argv[1], sys.argv[2])
PY
    else
        fail "Cannot download $1: no curl, wget or python"
    fi
}

# __find_linux_boot_device: prints the block device /boot is on (and sets ROOTDEVICE to it).
__find_linux_boot_device() {
    local wanted dev
    wanted=$(stat -c %04D /boot) || return 1
    for dev in $(find /dev -type b 2>/dev/null); do
        if [ "$(stat -c %02t%02T "$dev")" = "$wanted" ]; then
            ROOTDEVICE=$dev
            break
        fi
    done
    echo "$ROOTDEVICE"
}

export -f fail __download __find_linux_boot_device
