"""Proxmox stand-ins for the cluster e2e tests: `pvecm` on real corosync (./pvecm) and
the helper that turns a test host with corosync into a freshly installed Proxmox node."""
