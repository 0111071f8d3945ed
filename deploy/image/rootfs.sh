#!/bin/sh
# Lays out the root filesystem of the s3x-proxy image in an empty directory. The one definition of
# the image's files, used by deploy/image.sh (buildah) and by deploy/Dockerfile (builder stage),
# so that both images hold exactly the same tree:
#
#   /usr/local/bin/s3x-proxy              the binary (0555, statically linked)
#   /etc/ssl/certs/ca-certificates.crt    CA roots (0444), for AWS_CA_BUNDLE-style consumers;
#                                         the proxy itself trusts webpki-roots + --upstream-ca
#   /etc/passwd, /etc/group               root and s3x-proxy (65532), both with no login shell
#   /etc/nsswitch.conf                    "hosts: files dns" for the static glibc resolver
#   /var/run/s3x-proxy/ca                 the CA directory: 0700, owned by 65532 (the only path
#                                         the runtime user can write; mount a volume here)
#
# Every other file and directory is owned by root and not writable by anyone else. There is no
# shell, no package manager, no /tmp.
#
#   rootfs.sh BINARY CA_BUNDLE OUTDIR
#
# POSIX sh, so that it also runs in minimal builder images.
set -eu

if [ "$#" -ne 3 ]; then
  echo "usage: rootfs.sh BINARY CA_BUNDLE OUTDIR" >&2
  exit 2
fi
binary=$1
bundle=$2
out=$3
uid=65532
gid=65532

if [ -e "$out" ] && [ -n "$(ls -A "$out")" ]; then
  echo "rootfs.sh: $out is not empty" >&2
  exit 2
fi
umask 022
mkdir -p "$out"
chmod 0755 "$out"
for d in etc etc/ssl etc/ssl/certs usr usr/local usr/local/bin var var/run var/run/s3x-proxy; do
  install -d -m 0755 -o 0 -g 0 "$out/$d"
done
install -m 0555 -o 0 -g 0 "$binary" "$out/usr/local/bin/s3x-proxy"
install -m 0444 -o 0 -g 0 "$bundle" "$out/etc/ssl/certs/ca-certificates.crt"
install -d -m 0700 -o "$uid" -g "$gid" "$out/var/run/s3x-proxy/ca"

printf '%s\n' \
  'root:x:0:0:root:/root:/sbin/nologin' \
  "s3x-proxy:x:$uid:$gid:s3x-proxy:/nonexistent:/sbin/nologin" >"$out/etc/passwd"
printf '%s\n' 'root:x:0:' "s3x-proxy:x:$gid:" >"$out/etc/group"
printf '%s\n' 'passwd: files' 'group: files' 'hosts: files dns' >"$out/etc/nsswitch.conf"
chown 0:0 "$out/etc/passwd" "$out/etc/group" "$out/etc/nsswitch.conf"
chmod 0444 "$out/etc/passwd" "$out/etc/group" "$out/etc/nsswitch.conf"
