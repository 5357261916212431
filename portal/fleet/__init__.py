"""The customer VM fleet: VMs (inventory nodes with a fleet profile), their figures, restart,
rebuild and update rollouts; the source fleet API's paths under /api/ (README, "Fleet")."""
