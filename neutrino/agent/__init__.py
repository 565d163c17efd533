"""The library every neutrino agent is built on: the server channel and the reconcile loop."""
