#!/usr/bin/env bash
# Assembles the build context of Containerfile.local: OUT/rootfs with the given `gp` binary,
# the shared libraries it needs (as `ldd` finds them, at the same paths), a `gp` user (65532),
# CA certificates (registries over HTTPS), /etc/gp/gp.toml and the mount points; OUT/volume,
# the empty folder that becomes /var/lib/gp.
#
#   deploy/container/stage.sh GP_BINARY OUT
set -euo pipefail
if [ $# -ne 2 ]; then
    echo "usage: $0 GP_BINARY OUT" >&2
    exit 2
fi
binary=$1
out=$2
here=$(cd "$(dirname "$0")" && pwd)
root="$out/rootfs"
rm -rf "$root"
mkdir -p "$root/usr/local/bin" "$root/etc/gp" "$root/proc" "$root/dev" "$root/tmp"
# /var/lib/gp, the volume's mount point, comes from an empty folder of its own, copied with
# the image's user as its owner (a folder in rootfs would be root's).
rm -rf "$out/volume"
mkdir -p "$out/volume"
chmod 1777 "$root/tmp"
cp "$binary" "$root/usr/local/bin/gp"
cp "$here/gp.toml" "$root/etc/gp/gp.toml"
cp "$here/Containerfile.local" "$out/Containerfile.local"
# The libraries: every path ldd names (the dynamic loader included), copied where it was.
ldd "$binary" | grep -o '/[^ ]*' | sort -u | while read -r lib; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
done
# Plugins built by cargo link against libgcc_s too (unwinding), even when gp does not.
for lib in /lib/x86_64-linux-gnu/libgcc_s.so.1 /usr/lib/x86_64-linux-gnu/libgcc_s.so.1; do
    if [ -e "$lib" ] && [ ! -e "$root$lib" ]; then
        mkdir -p "$root$(dirname "$lib")"
        cp -L "$lib" "$root$lib"
        break
    fi
done
if [ -e /etc/ssl/certs/ca-certificates.crt ]; then
    mkdir -p "$root/etc/ssl/certs"
    cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
fi
printf 'root:x:0:0:root:/:/sbin/nologin\ngp:x:65532:65532:gp:/var/lib/gp:/sbin/nologin\n' >"$root/etc/passwd"
printf 'root:x:0:\ngp:x:65532:\n' >"$root/etc/group"
echo "staged $root ($(du -sh "$root" | cut -f1))"
