# virsh for the hypervisor documents, whose parameters include Domain and LibvirtUri.
# shellcheck disable=SC2154 # SSM_Domain, SSM_LibvirtUri: parameters of the sourcing document
# shellcheck source=lib/common.sh
. "$(dirname "$0")/lib/common.sh"

v() { virsh -c "$SSM_LibvirtUri" "$@"; }

# virsh_failed WHAT OUTPUT: exit after virsh WHAT failed with OUTPUT: unknown_domain
# when libvirt does not know the domain (not defined, or not on this host), else failed.
virsh_failed() {
  case "$2" in
    *"failed to get domain"*) echo "CC1_ERROR=unknown_domain: $2" >&2; exit "$EXIT_UNKNOWN_DOMAIN";;
  esac
  echo "CC1_ERROR=failed: virsh $1: $2" >&2; exit "$EXIT_FAILED"
}

# look_up_domain: exits when libvirt does not know $SSM_Domain; sets $persistent
# (yes/no) and $config ('--config' for a persistent domain, whose config must change
# with the live one; a transient domain has no config to update).
look_up_domain() {
  if ! info=$(v dominfo "$SSM_Domain" 2>&1); then virsh_failed dominfo "$info"; fi
  persistent=no
  if printf '%s\n' "$info" | grep -Eq '^Persistent:[[:space:]]+yes$'; then persistent=yes; fi
  config=''
  # shellcheck disable=SC2034 # read by the scripts that change the domain
  if [ "$persistent" = yes ]; then config='--config'; fi
}

# source_of DEV: the source of target DEV in the live domain, or nothing when absent.
source_of() {
  v domblklist "$SSM_Domain" --details | awk -v dev="$1" 'NR > 2 && $3 == dev { print $4 }'
}
