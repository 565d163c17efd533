"""The DHCP agent's data plane: dnsmasq, rendered and supervised."""
