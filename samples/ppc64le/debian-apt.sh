# Sourced by the ppc64le sample scripts: Debian 12 ppc64el packages fetched
# with `apt-get download` under a private apt state (the host's apt
# configuration, sources and package database stay untouched), as
# ../fetch-debian-kernel.sh does for the kernel.
#
#   debian_ppc64el_init           sets $debian_dir and updates the index once
#   debian_ppc64el_download DIR PKG...   downloads the packages' .debs into DIR

debian_ppc64el_init() {
  local cache=${SVMKIT_CACHE:-/var/cache/svmkit}
  debian_dir=$cache/debian-ppc64el
  mkdir -p "$debian_dir/lists/partial" "$debian_dir/archives/partial"
  # One fetch at a time per cache (tests run in parallel); held until the
  # sourcing script exits.
  exec 9>"$debian_dir/.svmkit-fetch.lock"
  flock 9
  debian_apt_opts=(
    -o APT::Architecture=ppc64el -o APT::Architectures=ppc64el
    -o Dir::State::Lists="$debian_dir/lists" -o Dir::State::Status=/dev/null
    -o Dir::Cache="$debian_dir" -o Dir::Cache::archives="$debian_dir/archives"
    -o Debug::NoLocking=1 -o APT::Sandbox::User=root
  )
  # The index is shared with fetch-debian-kernel.sh; refreshed when missing.
  if ! ls "$debian_dir"/lists/*_main_binary-ppc64el_Packages* >/dev/null 2>&1; then
    # A mirror in mid-sync can fail one index; only the download decides.
    apt-get "${debian_apt_opts[@]}" update -qq >&2 ||
      echo "debian-apt: apt-get update reported errors; continuing" >&2
  fi
}

debian_ppc64el_download() {
  local into=$1
  shift
  (cd "$into" && apt-get "${debian_apt_opts[@]}" download "$@" >&2)
}
