"""Data planes on Linux: links, bridges and VXLAN through netlink (pyroute2)."""
